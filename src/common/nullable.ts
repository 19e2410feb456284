import { getMetadataStorage, IS_OPTIONAL, ValidateIf, ValidationError, ValidationTypes } from 'class-validator';

/**
 * Optional fields and `null`. class-validator's `@IsOptional()` skips every check when a value is `undefined` *or
 * `null`*, so `{"claimQuotaFraction": null}` passed validation and reached the service as a number. In this API an
 * optional field may be left out, never sent as null: the validation pipe refuses null for every `@IsOptional()`
 * property (findNullOptionals below), in every DTO, nested ones included.
 *
 * A field that really means something when null (say, "clear this value") declares it with `@Nullable()` instead of
 * `@IsOptional()`: it may then be absent or null, and its other checks run on any other value.
 */
export function Nullable(): PropertyDecorator {
  return ValidateIf((_object: object, value: unknown) => value !== null && value !== undefined);
}

/**
 * Every `@IsOptional()` property that holds null, in a transformed DTO and the DTOs nested in it (by @ValidateNested),
 * as validation errors named by their path (`iot.attributes`). Iterative; the body's depth is bounded before this runs.
 */
export function findNullOptionals(entity: object): ValidationError[] {
  const storage = getMetadataStorage();
  const errors: ValidationError[] = [];
  const stack: { value: object; path: string }[] = [{ value: entity, path: '' }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    const metadatas = storage.getTargetValidationMetadatas(value.constructor, '', false, false);
    const reported = new Set<string>();
    for (const metadata of metadatas) {
      const property = metadata.propertyName;
      const child = (value as Record<string, unknown>)[property];
      const at = path ? `${path}.${property}` : property;
      if (metadata.type === ValidationTypes.CONDITIONAL_VALIDATION && metadata.name === IS_OPTIONAL && child === null && !reported.has(property)) {
        reported.add(property);
        errors.push(Object.assign(new ValidationError(), { property: at, value: null, constraints: { isNotNull: `${at} must not be null` }, children: [] }));
      } else if (metadata.type === ValidationTypes.NESTED_VALIDATION && child !== null && typeof child === 'object') {
        const items = Array.isArray(child) ? child.map((item, index) => ({ item: item as unknown, at: `${at}.${index}` })) : [{ item: child as unknown, at }];
        for (const { item, at: itemPath } of items) {
          if (item !== null && typeof item === 'object') stack.push({ value: item, path: itemPath });
        }
      }
    }
  }
  return errors;
}
