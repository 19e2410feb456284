/**
 * Control characters (C0 including NUL, DEL, C1) have no place in names, labels or search terms: they break
 * log lines and parsers, and PostgreSQL refuses NUL in text outright.
 */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex
export const NO_CONTROL_CHARS = /^[^\u0000-\u001f\u007f-\u009f]*$/;
