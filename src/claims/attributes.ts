import { Errors } from '../common/errors';

/** AWS IoT thing attributes: at most 50; names [a-zA-Z0-9_.,@/:#=[\]-]{1,128}; values the same set, up to 800. */
const ATTRIBUTE_NAME = /^[a-zA-Z0-9_.,@/:#=[\]-]{1,128}$/;
const ATTRIBUTE_VALUE = /^[a-zA-Z0-9_.,@/:#=[\]-]{0,800}$/;
const MAX_ATTRIBUTES = 50;

export function checkThingAttributes(attributes: Record<string, unknown>, field: string): asserts attributes is Record<string, string> {
  const entries = Object.entries(attributes);
  if (entries.length > MAX_ATTRIBUTES) throw Errors.validation(`${field} may hold at most ${MAX_ATTRIBUTES} attributes`);
  for (const [name, value] of entries) {
    if (!ATTRIBUTE_NAME.test(name)) throw Errors.validation(`${field}: attribute names are 1-128 characters of letters, digits and _.,@/:#=[]-`);
    if (typeof value !== 'string' || !ATTRIBUTE_VALUE.test(value)) {
      throw Errors.validation(`${field}.${name} must be a string of at most 800 letters, digits and _.,@/:#=[]-`);
    }
  }
}
