// @peculiar/x509 resolves its ASN.1 parsers and formatters through tsyringe, which needs the Reflect metadata API
// loaded before it: import the library from here, never directly (eslint's no-restricted-imports says so).
import 'reflect-metadata';

export * from '@peculiar/x509';
