#!/usr/bin/env node
// The CLI as a bundle (dist/bundle/pawl.mjs plus one chunk per lazily imported command), built
// from tsc's dist/ by esbuild. Measured (bench/, and CPU time of 5 runs on a loaded 2-core host):
// `pawl run examples/add` 0.69 s of CPU unbundled, 0.51 s bundled: resolving and compiling ~400
// small ESM files (zod alone is ~100) costs more than parsing one big one. Splitting keeps
// `pawl --help` from loading what only `run` needs. koffi stays external (a native addon).
// test/unit/cli-startup.test.ts bundles src/cli/main.ts the same way (bundleCli) and checks
// what `pawl --help` loads.
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

// zod's index re-exports every locale (~370 KB, half of zod in the bundle) as z.locales; pawl
// uses none of them (English is zod's default, set by zod from locales/en.js directly), so the
// bundle's z.locales holds English only.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${sep}node_modules${sep}zod${sep}`) ? { path: join(dirname(args.importer), '..', 'locales', 'english-only.js'), namespace: 'zod-locales' } : undefined);
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({ contents: 'export { default as en } from "./en.js";', resolveDir: dirname(args.path), loader: 'js' }));
  },
};

export async function bundleCli(entry, outdir) {
  rmSync(outdir, { recursive: true, force: true });
  await build({
    entryPoints: { pawl: entry },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outdir,
    outExtension: { '.js': '.mjs' },
    external: ['koffi'],
    plugins: [zodEnglishOnly],
    logLevel: 'warning',
    // CommonJS dependencies (ajv, yaml) call require() for node's builtins.
    banner: { js: "import { createRequire as __pawlRequire } from 'node:module'; const require = __pawlRequire(import.meta.url);" },
  });
  chmodSync(join(outdir, 'pawl.mjs'), 0o755);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await bundleCli('dist/cli/main.js', 'dist/bundle');
