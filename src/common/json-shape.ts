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
 * Refuses a parsed JSON value nested deeper than MAX_JSON_DEPTH, holding more than MAX_JSON_VALUES values, with a
 * reserved key (`__proto__`, `constructor`, `prototype`), or with a NUL character in a key or a string: PostgreSQL
 * cannot store U+0000 in text (a query with one fails, which was a 500), and no field of this API has a use for it.
 * Iterative (an explicit stack), stopping at the first finding, so its own cost is bounded by the limits and the body
 * size. Returns the refusal, or undefined when the value is fine.
 */
export function checkJsonShape(value: unknown, limits: { maxDepth: number; maxValues: number } = { maxDepth: MAX_JSON_DEPTH, maxValues: MAX_JSON_VALUES }): DomainError | undefined {
  if (typeof value === 'string') return value.includes(NUL) ? nulIn('the body') : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  const stack: Pending[] = [{ node: value, depth: 1, path: '' }];
  let values = 0;
  while (stack.length > 0) {
    const { node, depth, path } = stack.pop()!;
    if (depth > limits.maxDepth) return Errors.bodyTooDeep(`the JSON body is nested more than ${limits.maxDepth} levels deep`);
    // Counted before any child is looked at, and without building a list of the children: a body of 16 MiB holds
    // 8 million items, and listing them first cost 700 MiB and more than a second before the refusal.
    if (Array.isArray(node)) {
      values += node.length;
      if (values > limits.maxValues) return tooWide(limits.maxValues);
      for (let index = 0; index < node.length; index++) {
        const refusal = checkChild(node[index] as unknown, path ? `${path}.${index}` : String(index), depth, stack);
        if (refusal) return refusal;
      }
    } else {
      values += countKeys(node, limits.maxValues - values);
      if (values > limits.maxValues) return tooWide(limits.maxValues);
      for (const key in node) {
        if (!Object.hasOwn(node, key)) continue;
        const at = path ? `${path}.${key}` : key;
        if (RESERVED_KEYS.has(key)) return reservedKey(at);
        if (key.includes(NUL)) return nulIn(`a property name under ${path || 'the body'}`);
        const refusal = checkChild((node as Record<string, unknown>)[key], at, depth, stack);
        if (refusal) return refusal;
      }
    }
  }
  return undefined;
}

type Pending = { node: object; depth: number; path: string };

/** A string child is checked at once; an object or array child waits on the stack. */
function checkChild(child: unknown, at: string, depth: number, stack: Pending[]): DomainError | undefined {
  if (typeof child === 'string' && child.includes(NUL)) return nulIn(at);
  if (child !== null && typeof child === 'object') stack.push({ node: child, depth: depth + 1, path: at });
  return undefined;
}

/** The object's own keys, counted without listing them, and only up to one past `budget` (enough to refuse). */
function countKeys(node: object, budget: number): number {
  let count = 0;
  for (const key in node) {
    if (!Object.hasOwn(node, key)) continue;
    if (++count > budget) break;
  }
  return count;
}

function tooWide(maxValues: number): DomainError {
  return Errors.bodyTooWide(`the JSON body holds more than ${maxValues} values`);
}

/**
 * Refuses a query string naming prototype machinery at its top level (query strings are flat), or carrying a NUL
 * character in a value, as checkJsonShape does for bodies.
 */
export function checkQuery(value: unknown): DomainError | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, child] of Object.entries(value)) {
    if (RESERVED_KEYS.has(key)) return reservedKey(key);
    const texts = Array.isArray(child) ? child : [child];
    if (key.includes(NUL) || texts.some((text) => typeof text === 'string' && text.includes(NUL))) return nulIn(key.replaceAll(NUL, '\\0'));
  }
  return undefined;
}

const NUL = '\u0000';

function nulIn(where: string): DomainError {
  const finding = `${where} must not contain NUL characters`;
  return Errors.validation(finding, { errors: [finding] });
}

function reservedKey(path: string): DomainError {
  const finding = `property ${path} should not exist`;
  return Errors.validation(finding, { errors: [finding] });
}
