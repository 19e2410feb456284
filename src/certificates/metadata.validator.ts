import { registerDecorator, ValidationOptions } from 'class-validator';

const MAX_ENTRIES = 20;
const KEY = /^[A-Za-z0-9._:-]{1,64}$/;
const MAX_VALUE = 256;

/** Certificate metadata: at most 20 string labels, keys [A-Za-z0-9._:-]{1,64}, values up to 256 characters. */
export function MaxMetadata(options?: ValidationOptions): PropertyDecorator {
  return (target: object, propertyName: string | symbol) =>
    registerDecorator({
      name: 'metadata',
      target: target.constructor,
      propertyName: propertyName as string,
      options: {
        message: `metadata must be at most ${MAX_ENTRIES} entries of string values (keys [A-Za-z0-9._:-]{1,64}, values up to ${MAX_VALUE} characters)`,
        ...options,
      },
      validator: {
        validate(value: unknown): boolean {
          if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
          const entries = Object.entries(value);
          return (
            entries.length <= MAX_ENTRIES &&
            entries.every(([k, v]) => KEY.test(k) && typeof v === 'string' && v.length <= MAX_VALUE)
          );
        },
      },
    });
}
