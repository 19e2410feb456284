import { ArgumentMetadata, ParseUUIDPipe, ValidationError, ValidationPipe } from '@nestjs/common';
import type { ValidatorOptions } from 'class-validator';
import { Errors } from './errors';
import { checkQuery } from './json-shape';
import { findNullOptionals } from './nullable';

/** Path ids are UUIDs; anything else is a 400 before it reaches a query. */
export const UuidParam = new ParseUUIDPipe({ exceptionFactory: () => Errors.validation('id must be a UUID') });

function flatten(errors: ValidationError[], parent = ''): string[] {
  return errors.flatMap((error) => {
    const path = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => message.replace(error.property, path));
    return [...own, ...flatten(error.children ?? [], path)];
  });
}

/**
 * Nest's ValidationPipe, stricter in two ways: keys that name prototype machinery (`__proto__`, `constructor`,
 * `prototype`), which Nest strips silently, are refused like any other unknown key, and so are NUL characters
 * (bodies are checked as they are parsed, common/json-shape.ts; this covers query strings); and an optional field
 * sent as null is refused unless it is declared @Nullable() (common/nullable.ts).
 */
class RequestValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'query') {
      const refusal = checkQuery(value);
      if (refusal) throw refusal;
    }
    return super.transform(value, metadata);
  }

  protected override async validate(object: object, validatorOptions?: ValidatorOptions): Promise<ValidationError[]> {
    const errors = await super.validate(object, validatorOptions);
    return [...errors, ...findNullOptionals(object)];
  }
}

/**
 * Request validation: unknown fields are refused (a typo in a security setting must not pass silently),
 * types are not coerced in bodies, optional fields may be left out but not sent as null, and every finding is
 * listed in the problem's `errors`.
 */
export const validationPipe = new RequestValidationPipe({
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
  transformOptions: { enableImplicitConversion: false },
  exceptionFactory: (errors) => {
    const findings = flatten(errors);
    return Errors.validation(findings[0] ?? 'request is invalid', { errors: findings });
  },
});
