import { ParseUUIDPipe, ValidationError, ValidationPipe } from '@nestjs/common';
import { Errors } from './errors';

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
 * Request validation: unknown fields are refused (a typo in a security setting must not pass silently),
 * types are not coerced in bodies, and every finding is listed in the problem's `errors`.
 */
export const validationPipe = new ValidationPipe({
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
  transformOptions: { enableImplicitConversion: false },
  exceptionFactory: (errors) => {
    const findings = flatten(errors);
    return Errors.validation(findings[0] ?? 'request is invalid', { errors: findings });
  },
});
