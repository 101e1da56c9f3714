// The CLI as one CommonJS bundle (dist/bundle/cli.cjs, scripts/bundle-cli.mjs) compiled by
// vm.Script with V8's code cache, kept in <stateDir>/cache/cli-code-<command>-<copy> (one per
// command, as it holds the functions the command compiled, written when it ends; one per copy of
// pawl, so that checkouts sharing a state dir keep theirs).
// The cache is executable code for V8, which checks only its header (version, flags, source
// length), so it is used only when it was stored under this key (the bundle's content hash, node's
// version and arch, the process's node flags and NODE_OPTIONS), and only from a file and directory that no one
// but this user can write (like the rootfs and filters beside it). Anything else (no cache, a
// stale or rejected one, a read-only or foreign state dir) compiles the bundle as node would,
// and the cache is rewritten where it can be. Writing one removes those no command has used for
// 30 days (other copies' that are gone: each checkout adds ~1 MB per command).
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { constants as fsc, fstatSync, futimesSync, lstatSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, closeSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script, constants as vmc } from 'node:vm';
import { stateDirFromEnv } from '../config/state-dir.js';
import { mkdirPrivateSync } from '../util/private-dir.js';

/** What became of the cache in this process: PAWL_TIMINGS prints it (timings.ts). */
export type CodeCacheState = 'hit' | 'miss' | 'stale' | 'rejected' | 'untrusted';
export const CODE_CACHE_STATE = Symbol.for('pawl.codeCache');

/** Commands with a cache of their own; the rest share one. */
const OWN_CACHE = new Set(['run', 'test', 'exec', 'explain', 'serve']);
const KEY_LENGTH = 64; // sha256, hex: the file starts with the key it was stored under

/** Writable by this user only (a cache anyone else can write would run their code as pawl). */
const ownedOnly = (st: Stats) => st.uid === process.geteuid?.() && (st.mode & 0o022) === 0;

/** Run dist/bundle/cli.cjs with the code cache; false when this build has no bundle (then import main.js). */
export function runCachedBundle(cmd: string): boolean {
  const file = fileURLToPath(new URL('./cli.cjs', import.meta.url));
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return false;
  }
  // The build makes it ASCII: latin1 decodes it several times faster than utf8, into a one-byte string.
  const source = bytes.toString(isAscii(bytes) ? 'latin1' : 'utf8');
  const dir = join(stateDirFromEnv(), 'cache');
  // One per installed copy too: two checkouts sharing a state dir do not overwrite each other's.
  const copy = createHash('sha256').update(file).digest('hex').slice(0, 12);
  const cacheFile = join(dir, `cli-code-${OWN_CACHE.has(cmd) ? cmd : 'other'}-${copy}`);
  const key = createHash('sha256').update(bytes).update(`\0${process.version}\0${process.arch}\0${JSON.stringify(process.execArgv)}\0${process.env.NODE_OPTIONS ?? ''}`).digest('hex');
  const { data, state } = readCache(dir, cacheFile, key);
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    ...(data ? { cachedData: data } : {}),
    importModuleDynamically: vmc.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const final: CodeCacheState = state === 'hit' && script.cachedDataRejected ? 'rejected' : state;
  (globalThis as Record<symbol, unknown>)[CODE_CACHE_STATE] = final;
  // Written at exit, so the cache holds every function the command compiled, not only the top level.
  if (final !== 'hit' && final !== 'untrusted') process.once('exit', () => writeCache(dir, cacheFile, key, script));
  const module = { exports: {} };
  (script.runInThisContext() as (...a: unknown[]) => void)(module.exports, createRequire(file), module, file, dirname(file));
  return true;
}

function readCache(dir: string, cacheFile: string, key: string): { data?: Buffer; state: CodeCacheState } {
  let fd: number;
  try {
    fd = openSync(cacheFile, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch {
    try {
      return { state: ownedOnly(statSync(dir)) ? 'miss' : 'untrusted' };
    } catch {
      return { state: 'miss' }; // no cache dir yet: writeCache makes it
    }
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || !ownedOnly(st) || !ownedOnly(statSync(dir))) return { state: 'untrusted' };
    const buf = readFileSync(fd);
    if (buf.subarray(0, KEY_LENGTH).toString('latin1') !== key) return { state: 'stale' };
    // In use: its date moves on (once a day at most), so another copy's pruning leaves it.
    if (Date.now() - st.mtimeMs > DAY_MS) {
      try {
        futimesSync(fd, new Date(), new Date());
      } catch {
        /* a read-only state dir: still a hit */
      }
    }
    return { data: buf.subarray(KEY_LENGTH), state: 'hit' };
  } catch {
    return { state: 'miss' };
  } finally {
    closeSync(fd);
  }
}

const DAY_MS = 24 * 3600_000;
/** A cache no copy of pawl has used this long is removed: each checkout (a deploy, a clone) adds ~1 MB per command. */
const UNUSED_MS = 30 * DAY_MS;

/** Remove the CLI caches no command has used for UNUSED_MS (a hit dates its file, a write makes it): those of copies gone or left. */
function pruneUnused(dir: string): void {
  const now = Date.now();
  for (const name of readdirSync(dir)) {
    if (!name.startsWith('cli-code-')) continue;
    const file = join(dir, name);
    try {
      const st = lstatSync(file);
      if (st.isFile() && now - st.mtimeMs > UNUSED_MS) rmSync(file, { force: true });
    } catch {
      /* gone meanwhile */
    }
  }
}

/** Best effort, atomic (readers see the old cache or the new one), mode 0600 in a 0700 dir. */
function writeCache(dir: string, cacheFile: string, key: string, script: Script): void {
  const tmp = `${cacheFile}.${process.pid}`;
  try {
    mkdirPrivateSync(dir);
    if (!ownedOnly(statSync(dir))) return;
    writeFileSync(tmp, Buffer.concat([Buffer.from(key, 'latin1'), script.createCachedData()]), { mode: 0o600, flag: 'wx' });
    renameSync(tmp, cacheFile);
    pruneUnused(dir);
  } catch {
    // Not cached: a read-only or foreign state dir costs only the compile.
    try {
      rmSync(tmp, { force: true });
    } catch {
      /* nothing was written */
    }
  }
}
