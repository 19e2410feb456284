import { DomainError, Errors } from './errors';

/**
 * Deepest nesting of objects and arrays a JSON body may have. Our deepest request (an AWS IoT policy document inside
 * POST /v1/iot/policies) nests about 6 levels. class-transformer and class-validator walk a body recursively, so a few
 * kilobytes of `[[[[…` nested a thousand levels overflow the stack: the bound is checked first, without recursion.
 */
export const MAX_JSON_DEPTH = 32;
/** Most values (object members plus array items, at any depth) a JSON body may hold; our largest lists hold 1,000. */
export const MAX_JSON_VALUES = 10_000;
/**
 * Keys that name an object's prototype machinery. Nest's validation pipe and class-transformer drop them silently
 * (against prototype pollution), so they would be accepted where any other unknown key is refused: they are refused
 * like any unknown key instead, wherever they appear.
 */
const RESERVED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Refuses a parsed JSON value nested deeper than MAX_JSON_DEPTH, holding more than MAX_JSON_VALUES values, or with a
 * reserved key (`__proto__`, `constructor`, `prototype`). Iterative (an explicit stack), stopping at the first finding,
 * so its own cost is bounded by the limits, not by the body. Returns the refusal, or undefined when the value is fine.
 */
export function checkJsonShape(value: unknown, limits: { maxDepth: number; maxValues: number } = { maxDepth: MAX_JSON_DEPTH, maxValues: MAX_JSON_VALUES }): DomainError | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const stack: { node: object; depth: number; path: string }[] = [{ node: value, depth: 1, path: '' }];
  let values = 0;
  while (stack.length > 0) {
    const { node, depth, path } = stack.pop()!;
    if (depth > limits.maxDepth) return Errors.bodyTooDeep(`the JSON body is nested more than ${limits.maxDepth} levels deep`);
    const keys = Array.isArray(node) ? undefined : Object.keys(node);
    values += keys ? keys.length : (node as unknown[]).length;
    if (values > limits.maxValues) return Errors.bodyTooWide(`the JSON body holds more than ${limits.maxValues} values`);
    if (keys) {
      for (const key of keys) {
        const at = path ? `${path}.${key}` : key;
        if (RESERVED_KEYS.has(key)) return reservedKey(at);
        const child = (node as Record<string, unknown>)[key];
        if (child !== null && typeof child === 'object') stack.push({ node: child, depth: depth + 1, path: at });
      }
    } else {
      (node as unknown[]).forEach((child, index) => {
        if (child !== null && typeof child === 'object') stack.push({ node: child, depth: depth + 1, path: path ? `${path}.${index}` : String(index) });
      });
    }
  }
  return undefined;
}

/** Refuses an object with a reserved key at its top level (query strings, which are flat). */
export function checkReservedKeys(value: unknown): DomainError | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const key = Object.keys(value).find((name) => RESERVED_KEYS.has(name));
  return key === undefined ? undefined : reservedKey(key);
}

function reservedKey(path: string): DomainError {
  const finding = `property ${path} should not exist`;
  return Errors.validation(finding, { errors: [finding] });
}
