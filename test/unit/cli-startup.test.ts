// `pawl --help` and `pawl --version` start as fast as node allows: they load the CLI's argument
// parsing and nothing else (no zod, no library module, no dependency). The CLI is bundled from
// src/ exactly as the shipped bin is (scripts/bundle-cli.mjs), run with a loader hook that
// records every module node loads, and each loaded file's bundled sources (esbuild names them
// in `// path` comments) must all be the CLI's own.
// Every other command runs the CLI's CommonJS bundle with a V8 code cache (cli/code-cache.ts):
// stored, used, and never trusted when stale, rejected by V8, or writable by others.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
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
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules')); // koffi stays external
  mkdirSync(join(dir, 'dist'));
  await (bundleCli as (cliDir: string, outdir: string, ext: string) => Promise<void>)(join(ROOT, 'src', 'cli'), join(dir, 'dist', 'bundle'), '.ts');
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

describe('pawl run through the code cache', () => {
  const state = mkdtempSync(join(tmpdir(), 'pawl-codecache-'));
  const cacheFile = join(state, 'cache', `cli-code-run-${createHash('sha256').update(join(dir, 'dist', 'bundle', 'cli.cjs')).digest('hex').slice(0, 12)}`);
  /** `pawl run` of a task that does not exist: the run's modules load, then it fails as a usage error. */
  const run = (stateDir = state, bin = BIN) => {
    const r = spawnSync(process.execPath, [bin, 'run', join(dir, 'no-such-task')], { encoding: 'utf8', env: { ...process.env, PAWL_STATE_DIR: stateDir, PAWL_TIMINGS: '1' } });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`pawl: task not found: ${join(dir, 'no-such-task')}`);
    return /code-cache=(\w+)/.exec(r.stderr)?.[1];
  };

  it('compiles and stores it (0600 in a 0700 dir), then uses it', () => {
    expect(run()).toBe('miss');
    expect(statSync(cacheFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(state, 'cache')).mode & 0o777).toBe(0o700);
    expect(run()).toBe('hit');
  });

  it('does not use a cache stored for another bundle (or node), and replaces it', () => {
    const stored = readFileSync(cacheFile);
    writeFileSync(cacheFile, Buffer.concat([Buffer.from('0'.repeat(64)), stored.subarray(64)]), { mode: 0o600 });
    expect(run()).toBe('stale');
    expect(run()).toBe('hit');
  });

  it('compiles afresh when V8 rejects the cache, and replaces it', () => {
    const key = readFileSync(cacheFile).subarray(0, 64);
    writeFileSync(cacheFile, Buffer.concat([key, Buffer.alloc(4096, 7)]), { mode: 0o600 });
    expect(run()).toBe('rejected');
    expect(run()).toBe('hit');
  });

  it('does not trust a cache file or dir that others can write, and leaves it alone', () => {
    chmodSync(cacheFile, 0o666);
    expect(run()).toBe('untrusted');
    expect(statSync(cacheFile).mode & 0o777).toBe(0o666);
    chmodSync(cacheFile, 0o600);
    chmodSync(join(state, 'cache'), 0o777);
    expect(run()).toBe('untrusted');
    chmodSync(join(state, 'cache'), 0o700);
    expect(run()).toBe('hit');
  });

  it("removes other copies' caches unused for 30 days when it writes one, and keeps its own, used one dated", () => {
    const cache = join(state, 'cache');
    const days = (n: number) => new Date(Date.now() - n * 24 * 3600_000);
    const gone = join(cache, 'cli-code-run-000000000000'); // a checkout removed long ago
    const recent = join(cache, 'cli-code-run-111111111111'); // another checkout, used last week
    const other = join(cache, 'seccomp-old.json'); // not the CLI's
    for (const f of [gone, recent, other]) writeFileSync(f, 'x', { mode: 0o600 });
    utimesSync(gone, days(31), days(31));
    utimesSync(recent, days(7), days(7));
    utimesSync(other, days(31), days(31));
    // Its own cache, last written 2 days ago and used now: dated again, so no other copy removes it.
    utimesSync(cacheFile, days(2), days(2));
    expect(run()).toBe('hit');
    expect(Date.now() - statSync(cacheFile).mtimeMs).toBeLessThan(60_000);
    expect(existsSync(gone)).toBe(true); // a hit writes nothing, so prunes nothing
    const stored = readFileSync(cacheFile);
    writeFileSync(cacheFile, Buffer.concat([Buffer.from('0'.repeat(64)), stored.subarray(64)]), { mode: 0o600 });
    expect(run()).toBe('stale'); // rewritten: the unused are pruned
    expect([existsSync(gone), existsSync(recent), existsSync(other), existsSync(cacheFile)]).toEqual([false, true, true, true]);
  });

  it('runs without a cache where the state dir cannot be written', () => {
    const notDir = join(state, 'a-file');
    writeFileSync(notDir, '');
    expect(run(notDir)).toBe('miss');
    expect(run(notDir)).toBe('miss');
  });

  it('--help and --version write no cache', () => {
    const fresh = mkdtempSync(join(tmpdir(), 'pawl-codecache-'));
    for (const args of [['--help'], ['--version']]) expect(spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, PAWL_STATE_DIR: fresh } }).status).toBe(0);
    expect(existsSync(join(fresh, 'cache'))).toBe(false);
  });

  it('without the CommonJS bundle, runs the ES modules', () => {
    const cjs = join(dir, 'dist', 'bundle', 'cli.cjs');
    renameSync(cjs, `${cjs}.away`);
    try {
      expect(run()).toBeUndefined();
    } finally {
      renameSync(`${cjs}.away`, cjs);
    }
  });
});
