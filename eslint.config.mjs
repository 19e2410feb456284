// ESLint flat config: typescript-eslint's recommended rules (no type information needed, so it is fast
// and runs without a build). `npm run lint` / `npx eslint .`
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'coverage/', 'clients/typescript/', 'dist-lambdas/', 'deploy/']),
  tseslint.configs.recommended,
  {
    rules: {
      // Unused names are mistakes, except deliberate placeholders spelled with a leading underscore
      // (e.g. `_controllerKey` in a callback signature, `{ keyRef: _keyRef, ...rest }` to drop a field).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // Control characters in a regex are usually a typo; the few deliberate ones (input validation) say so.
      'no-control-regex': 'error',
      // @peculiar/x509 needs reflect-metadata loaded before it: src/pki/x509-library.ts does that, once.
      'no-restricted-imports': ['error', { paths: [{ name: '@peculiar/x509', message: 'import it from src/pki/x509-library.ts (it loads reflect-metadata first)' }] }],
    },
  },
  {
    files: ['src/pki/x509-library.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // Plain CommonJS node scripts (build, test runner): require() is how they load modules.
    files: ['scripts/**/*.js', 'bin/**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
