// The generated fetch client names DOM's BodyInit; the project compiles without the DOM library (lib: ES2022), and
// Node's fetch types (undici-types, from @types/node) define the same type under that name.
type BodyInit = import('undici-types').BodyInit;
