// `pawl --help` and `pawl --version` start as fast as node allows: they load the CLI's argument
// parsing and nothing else (no zod, no library module, no dependency). The CLI is bundled from
// src/ exactly as the shipped bin is (scripts/bundle-cli.mjs), run with a loader hook that
// records every module node loads, and each loaded file's bundled sources (esbuild names them
// in `// path` comments) must all be the CLI's own.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: a plain .mjs build script, no types
import { bundleCli } from '../../scripts/bundle-cli.mjs';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'pawl-startup-'));
const BIN = join(dir, 'dist', 'bundle', 'pawl.mjs');

beforeAll(async () => {
  // --version reads the package.json two levels above the bin, as in the package.
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  mkdirSync(join(dir, 'dist'));
  await (bundleCli as (entry: string, outdir: string) => Promise<void>)(join(ROOT, 'src', 'cli', 'main.ts'), join(dir, 'dist', 'bundle'));
  // ESM loads through the hook (run in its own thread); CommonJS require() through Module._load.
  writeFileSync(join(dir, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) { appendFileSync(process.env.LOAD_LOG, url + '\\n'); return next(url, context); }\n`);
  writeFileSync(join(dir, 'register.mjs'), `import Module, { register } from 'node:module';
import { appendFileSync } from 'node:fs';
register('./hooks.mjs', import.meta.url);
const load = Module._load;
Module._load = function (request, ...rest) { appendFileSync(process.env.LOAD_LOG, 'require:' + request + '\\n'); return load.call(this, request, ...rest); };\n`);
}, 60_000);

/** Run the bundled CLI; what it printed, and the files of every module it loaded (builtins left out). */
function traced(args: string[]) {
  const log = join(dir, `loads-${args.join('_').replace(/[^\w.-]/g, '_')}.txt`);
  writeFileSync(log, '');
  const r = spawnSync(process.execPath, ['--import', join(dir, 'register.mjs'), BIN, ...args], { encoding: 'utf8', env: { ...process.env, LOAD_LOG: log } });
  const entries = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const required = entries.filter((e) => e.startsWith('require:')).map((e) => e.slice('require:'.length)).filter((m) => !m.startsWith('node:'));
  const files = entries.filter((e) => e.startsWith('file:')).map((u) => fileURLToPath(u)).filter((f) => !f.startsWith(join(dir, 'register.mjs')) && !f.startsWith(join(dir, 'hooks.mjs')));
  return { ...r, required, files };
}

/** The source files esbuild bundled into a loaded file (its `// src/...` and `// node_modules/...` comments). */
const bundledSources = (file: string) => [...readFileSync(file, 'utf8').matchAll(/^\/\/ ((?:src|node_modules|dist)\/\S+)$/gm)].map((m) => m[1]!);

describe.each([
  [['--help'], /^usage:\n {2}pawl run TASK/],
  [['--version'], /^pawl \d+\.\d+\.\d+\n$/],
])('pawl %j', (args, printed) => {
  it('prints and loads only the CLI\'s own argument parsing: no zod, no library, no dependency', () => {
    const r = traced(args);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(printed);
    expect(r.files).toContain(BIN); // the hook saw the bin itself
    expect(r.required).toEqual([]);
    for (const f of r.files) expect(f.startsWith(join(dir, 'dist', 'bundle'))).toBe(true);
    const sources = r.files.flatMap(bundledSources);
    expect(sources).toContain('src/cli/main.ts');
    expect(sources.filter((s) => !/^src\/(cli\/[\w/-]+\.ts|errors\.ts)$/.test(s))).toEqual([]);
  });
});

describe('pawl run --server', () => {
  it('loads only the CLI and its http client: no zod, no library, no sandbox code (the service has them loaded)', () => {
    const r = traced(['run', join(ROOT, 'examples', 'add'), '--server', join(dir, 'no-such.sock'), '--input', '{"num1":1,"num2":2}']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot reach the service at .*no-such\.sock: no such socket/);
    expect(r.required).toEqual([]);
    const sources = r.files.flatMap(bundledSources);
    expect(sources).toContain('src/cli/commands/remote-run.ts');
    expect(sources.filter((s) => !/^src\/(cli\/[\w/-]+\.ts|errors\.ts|util\/json-depth\.ts)$/.test(s))).toEqual([]);
  });
});
