#!/usr/bin/env node
// The CLI as a bundle, built from tsc's dist/ by esbuild (dist/bundle/):
// - pawl.mjs, the bin (cli/launch.ts), plus one ES module chunk per lazily imported command:
//   `pawl --help` and `--version` load only the CLI's argument parsing. Measured (bench/, and CPU
//   time of 5 runs on a loaded 2-core host): `pawl run examples/add` 0.69 s of CPU unbundled,
//   0.51 s bundled: resolving and compiling ~400 small ESM files (zod alone is ~100) costs more
//   than parsing one big one.
// - cli.cjs, the same CLI (cli/main.ts) as one CommonJS file, which every other command runs
//   compiled with a V8 code cache (cli/code-cache.ts); the commands imported lazily stay lazy
//   in it (esbuild wraps each in an init function run at its import).
// - schema-deps.cjs: ajv, ajv-draft-04 and re2js for the schema thread, in one file.
// koffi stays external (a native addon). test/unit/cli-startup.test.ts bundles src/cli the same
// way (bundleCli) and checks what `pawl --help` loads and how the code cache is used.
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { createRequire } from 'node:module';
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

/**
 * ajv's own validator of the draft-07 meta-schema, generated here as code (ajv's standalone
 * mode) with the schema thread's options: ajv compiles it at run time, 40-50 ms of the thread's
 * start-up (and of every `pawl run`) otherwise. The thread checks every draft-07 schema with it
 * and words the failure as ajv's validateSchema does (schema-worker.ts).
 */
const draft07Meta = {
  name: 'draft-07-meta',
  setup(b) {
    b.onResolve({ filter: /^pawl:draft-07-meta$/ }, () => ({ path: 'draft-07-meta', namespace: 'pawl-generated' }));
    b.onLoad({ filter: /.*/, namespace: 'pawl-generated' }, () => {
      const require = createRequire(import.meta.url);
      const Ajv = require('ajv').default;
      const standalone = require('ajv/dist/standalone').default;
      const ajv = new Ajv({ allErrors: false, strict: false, logger: false, code: { source: true } });
      const contents = standalone(ajv, ajv.getSchema('http://json-schema.org/draft-07/schema'));
      return { contents, loader: 'js', resolveDir: dirname(require.resolve('ajv/package.json')) };
    });
  },
};

/** What every file built here is: one bundle for node 20. */
const NODE20 = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning' };

/** Bundle the CLI whose sources (launch, main: .js from tsc or .ts) are in `cliDir` into `outdir`. */
export async function bundleCli(cliDir, outdir, ext = '.js') {
  rmSync(outdir, { recursive: true, force: true });
  const common = { ...NODE20, outdir, external: ['koffi'], plugins: [zodEnglishOnly] };
  await build({
    ...common,
    entryPoints: { pawl: join(cliDir, `launch${ext}`) },
    splitting: true,
    format: 'esm',
    outExtension: { '.js': '.mjs' },
    // CommonJS dependencies (ajv, yaml) call require() for node's builtins.
    banner: { js: "import { createRequire as __pawlRequire } from 'node:module'; const require = __pawlRequire(import.meta.url);" },
  });
  await build({
    ...common,
    // Through stdin: main's #! line would be a syntax error inside code-cache.ts's function wrapper.
    stdin: { contents: `import './main${ext}';`, resolveDir: cliDir, sourcefile: 'cli-entry.js', loader: 'js' },
    outfile: join(outdir, 'cli.cjs'),
    outdir: undefined,
    format: 'cjs',
    // No comments (a third of the file, and one with a non-ASCII dash): the launcher reads,
    // hashes and hands V8 this file on every command, and reads it as latin1 when it is ASCII.
    minifyWhitespace: true,
    charset: 'ascii',
    // import.meta.url, where a module finds its package (config/host.ts) or dependencies: this file's.
    define: { 'import.meta.url': '__pawlBundleUrl' },
    banner: { js: "var __pawlBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  });
  await bundleSchemaDeps(join(outdir, 'schema-deps.cjs'), cliDir);
  chmodSync(join(outdir, 'pawl.mjs'), 0o755);
}

/**
 * The harness (task/harness.ts, node builtins only) as CommonJS, the file the rootfs gets as
 * /opt/pawl/harness.cjs: node starts a CommonJS main module ~10 ms sooner than an ES module (its
 * ESM loader stays unloaded; measured: spawn to a first write 65 vs 76 ms for an empty file), on
 * every sandbox's boot. Strict, as the ES module was; import.meta.url is this file's URL.
 */
export async function bundleHarness(entry, outfile) {
  await build({
    ...NODE20,
    entryPoints: [entry],
    format: 'cjs',
    outfile,
    define: { 'import.meta.url': '__pawlHarnessUrl' },
    banner: { js: "'use strict';\nvar __pawlHarnessUrl = require('node:url').pathToFileURL(__filename).href;" },
  });
}

/**
 * The schema thread's dependencies in one file (task/schema-thread.ts), each initialised at its
 * first use, and the draft-07 meta-schema's validator as code (draft07Meta).
 */
export async function bundleSchemaDeps(outfile, resolveDir) {
  await build({
    ...NODE20,
    plugins: [draft07Meta],
    stdin: {
      contents: "module.exports = { ajv: () => require('ajv'), ajvDraft04: () => require('ajv-draft-04'), re2js: () => require('re2js'), meta07: () => require('pawl:draft-07-meta') };",
      resolveDir,
      loader: 'js',
    },
    outfile,
    format: 'cjs',
    minifyWhitespace: true,
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await bundleCli('dist/cli', 'dist/bundle');
  await bundleHarness('dist/task/harness.js', 'dist/task/harness.cjs');
}
