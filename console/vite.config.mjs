// The ops console's build (docs/console.md): `npm run build` runs it after compiling the service, into dist/console,
// which the service serves at /console. Everything is bundled (no CDN); no inline script, so the page runs under the
// Content-Security-Policy the service sends (src/console/console-static.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/console/',
  logLevel: 'warn',
  clearScreen: false,
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    // The module-preload polyfill would be an inline script; every browser the console supports preloads natively.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
  },
});
