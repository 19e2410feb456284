// The layers of src/ and the rules that keep them: `npm run lint` runs `depcruise src` with this file, so CI fails on
// an import that runs from a lower layer up. Each folder of src/ sits in one layer and may import only folders of
// strictly lower layers (and its own files); folders of the same layer never import each other. The files at the top
// of src/ (app.module.ts, app.factory.ts, app.config.ts, main.ts, openapi.ts) are the composition root: they may
// import anything, and nothing in a folder imports them.
//
// Where a lower feature must make a higher one act (a certificate revoked: AWS IoT and the CRL follow), the lower one
// owns a port (certificates/certificate-events.ts, revocation-list-publisher.port.ts, renewal-campaigns.port.ts) and
// the higher one binds it (iot/, revocation/, rotation/: their *BindingModule, registered in app.module.ts).
'use strict';

/** Lowest first. `why` is the reason the layer may not import anything above it; it is printed with a violation. */
const LAYERS = [
  { name: 'common', folders: ['common'], why: 'shared vocabulary (errors, clock, actor, roles, route-access decorators) that every layer builds on' },
  { name: 'foundations', folders: ['config', 'pki', 'metrics', 'logging'], why: 'settings, pure X.509/DER code, the metric registry and the logger: no database, no feature, and not each other' },
  { name: 'database', folders: ['database'], why: 'the data source and transactions serve every feature, so they know none (no feature folder)' },
  { name: 'infrastructure', folders: ['keys', 'jobs'], why: 'key backends and the outbox run for any feature and know none of them' },
  { name: 'audit', folders: ['audit'], why: 'every feature records into the audit log, auth included: audit imports no auth' },
  { name: 'auth', folders: ['auth'], why: 'API keys and the guard protect every feature route, so they depend on none' },
  { name: 'authorities', folders: ['authorities'], why: 'CAs come before the certificates they issue' },
  { name: 'certificates', folders: ['certificates'], why: 'what higher features do on a certificate change goes through ports certificates owns' },
  { name: 'certificate followers', folders: ['revocation', 'iot'], why: 'CRL/OCSP and AWS IoT follow certificates; neither needs the other' },
  { name: 'device flows', folders: ['claims', 'rotation', 'secure-elements'], why: 'factory provisioning, rotation campaigns and secure-element manifest imports build on issuance and AWS IoT' },
  { name: 'protocols', folders: ['est'], why: 'EST (RFC 7030) speaks for the exchange, issuance and renewal below it; nothing below knows it' },
  { name: 'operations', folders: ['fleet', 'setup', 'health', 'dead-jobs'], why: 'audits, self-checks and health read everything below and are read by nothing' },
];

const below = (index) => LAYERS.slice(0, index).flatMap((layer) => layer.folders);

const layerRules = LAYERS.map((layer, index) => {
  const allowed = below(index);
  return {
    name: `layer-${layer.name.replace(/ /g, '-')}`,
    comment: `${layer.folders.join(', ')} may import only ${allowed.length ? allowed.join(', ') : 'its own files'}: ${layer.why}`,
    severity: 'error',
    from: { path: `^src/(${layer.folders.join('|')})/` },
    // $1 is the importing folder: its own files are allowed.
    to: { path: '^src/[^/]+/', pathNot: `^src/(${[...allowed, '$1'].join('|')})/` },
  };
});

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'pkcs11-binding-behind-adapter',
      comment: 'the PKCS #11 binding (pkcs11js) is known to one module only: src/keys/pkcs11/pkcs11-binding.ts (docs/pkcs11.md)',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/keys/pkcs11/pkcs11-binding\\.ts$' },
      to: { path: 'node_modules/pkcs11js/' },
    },
    {
      name: 'no-composition-root-imports',
      comment: 'src/*.ts wire the application together; a folder importing them would depend on every feature',
      severity: 'error',
      from: { path: '^src/[^/]+/' },
      to: { path: '^src/[^/]+\\.ts$' },
    },
    {
      name: 'typeorm-behind-adapters',
      comment: 'features use ports: only database/ and the TypeORM adapters (typeorm-*.ts) know TypeORM',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/database/', '/typeorm-[^/]+\\.ts$'] },
      to: { path: 'node_modules/(typeorm|@nestjs/typeorm)/' },
    },
    {
      name: 'tables-behind-adapters',
      comment: 'a table is read and written by its TypeORM adapter (and the local key backend, which keeps keys in one)',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/database/', '/typeorm-[^/]+\\.ts$', '^src/keys/local/'] },
      to: { path: '^src/database/entities/' },
    },
    {
      name: 'no-test-code-in-production',
      comment: 'the service must run without test support, stand-ins, scripts or the bench (specs may use them)',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.spec\\.ts$' },
      to: { path: '^(test|tools|scripts|bench)/' },
    },
    {
      name: 'tools-without-tests',
      comment: 'tools/ (the AWS stand-ins, the CSR builder) serve npm run dev:*, the bench and the tests, so they need no test code',
      severity: 'error',
      from: { path: '^tools/' },
      to: { path: '^(test|bench|scripts)/' },
    },
    {
      name: 'cli-on-the-generated-client',
      comment: 'the CLI (cli/) is a client of the service: it speaks HTTP through clients/ (generated from openapi.yaml), never server code',
      severity: 'error',
      from: { path: '^cli/' },
      to: { path: '^(src|test|tools|scripts|bench|migrations|examples)/' },
    },
    {
      name: 'no-circular',
      comment: 'an import cycle leaves a class undefined at load time (Nest then fails on an undefined module or provider)',
      severity: 'error',
      from: {},
      // A type-only import is erased at compile time, so a cycle through one cannot leave anything undefined.
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a layer that names a higher layer's types depends on it all the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
