// Builds the minimal read-only rootfs: each program of the recipe with exactly the shared
// libraries it needs, a minimal /etc, the task harness and empty mount points. Content-addressed:
// the directory is named by the hash of everything in it, built in a temp dir and renamed into
// place, so a half-built tree is never used and concurrent builders cannot collide.
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { runTool as execa } from '../util/tool.js';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../config/host.js';
import { PawlError } from '../errors.js';
import { ROOTFS_MOUNTS, ROOTFS_SYMLINKS } from './layout.js';
import type { FactsCache } from '../hostfacts/cache.js';
import { lddKey } from '../hostfacts/facts.js';
import { landlockRootfsFiles } from './landlock.js';
import { mkdirOpenSync } from '../util/private-dir.js';

const Recipe = z.object({
  programs: z.array(z.object({ from: z.string(), to: z.string() })),
  harness: z.string(),
  /** `pawl exec`'s HTTP proxy endpoint in network mode restricted (src/network/forwarder.ts). */
  egressForwarder: z.string(),
});
type Recipe = z.infer<typeof Recipe>;

export const RECIPE_DIR = join(PACKAGE_ROOT, 'rootfs');
// CommonJS: the build's bundleHarness (scripts/bundle-cli.mjs) says why.
export const HARNESS_SOURCE = join(PACKAGE_ROOT, 'dist', 'task', 'harness.cjs');
const FORWARDER_SOURCE = join(PACKAGE_ROOT, 'dist', 'network', 'forwarder.js');

/** One file to place in the rootfs: `source` on the host, `dest` inside. */
export interface RootfsFile {
  source: string;
  dest: string;
  mode: number;
}

// The recipe and its sources are looked up on every run (the rootfs signature: index.ts), each
// with a local metadata call: synchronous, microseconds each, where a promise per call waited for
// a thread-pool round trip (measured: ~20 ms of a CLI run's prepare on a loaded 2-core host).
export async function loadRecipe(): Promise<Recipe> {
  return Recipe.parse(JSON.parse(readFileSync(join(RECIPE_DIR, 'recipe.json'), 'utf8')));
}

function which(program: string): string {
  if (program.startsWith('/')) return program;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = join(dir, program);
    try {
      if (statSync(candidate).isFile()) return realpathSync(candidate);
    } catch {
      /* not in this dir */
    }
  }
  throw new PawlError('HostUnsupported', `rootfs: program "${program}" not found on PATH`);
}

const lddCache = new Map<string, string[]>();

/** Shared libraries of an ELF program, as the dynamic loader resolves them (ldd). Cached per
 * program version, since ldd costs a few ms and this runs on every sandbox start. */
export async function sharedLibraries(program: string, facts?: FactsCache): Promise<string[]> {
  const key = lddKey(program);
  const cached = lddCache.get(key);
  if (cached) return cached;
  // Across processes too (every CLI command is a new one): ldd cost ~30 ms per program quiet.
  const libs = facts ? await facts.remember(`ldd-${program}`, key, () => lddLibraries(program)) : await lddLibraries(program);
  lddCache.set(key, libs);
  return libs;
}

async function lddLibraries(program: string): Promise<string[]> {
  const { stdout, exitCode } = await execa('/usr/bin/ldd', [program], { reject: false });
  if (exitCode !== 0) return []; // static binary: "not a dynamic executable"
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /=>\s*(\/\S+)|^\s*(\/\S+)\s+\(/.exec(line);
    const lib = m?.[1] ?? m?.[2];
    if (lib) libs.push(lib);
    if (/not found/.test(line)) throw new PawlError('HostUnsupported', `rootfs: ${program} needs a library that is missing: ${line.trim()}`);
  }
  return libs;
}

// Debian's merged /usr: /lib and /lib64 are links into /usr, so place libraries under /usr.
const mergedUsr = (p: string) => (/^\/(lib|lib64|bin|sbin)\//.test(p) ? `/usr${p}` : p);

/** Everything the rootfs holds, with host sources. */
export async function rootfsFiles(recipe: Recipe, facts?: FactsCache): Promise<RootfsFile[]> {
  const files = new Map<string, RootfsFile>();
  for (const prog of recipe.programs) {
    const path = which(prog.from);
    files.set(prog.to, { source: realpathSync(path), dest: prog.to, mode: 0o755 });
    for (const lib of await sharedLibraries(path, facts)) {
      files.set(mergedUsr(lib), { source: realpathSync(lib), dest: mergedUsr(lib), mode: 0o755 });
    }
  }
  const etc = join(RECIPE_DIR, 'files');
  for (const rel of listFiles(etc)) files.set(`/${rel}`, { source: join(etc, rel), dest: `/${rel}`, mode: 0o644 });
  for (const [source, dest] of [[HARNESS_SOURCE, recipe.harness], [FORWARDER_SOURCE, recipe.egressForwarder]] as const) {
    try {
      statSync(source);
    } catch {
      throw new PawlError('HostUnsupported', `rootfs: ${source} is missing; run "npm run build" first`);
    }
    files.set(dest, { source, dest, mode: 0o644 });
  }
  for (const f of await landlockRootfsFiles()) files.set(f.dest, f);
  // Code-unit order: localeCompare's first call loads ICU's collation (~9 ms of every CLI run).
  return [...files.values()].sort((a, b) => (a.dest < b.dest ? -1 : a.dest > b.dest ? 1 : 0));
}

function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = join(prefix, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(dir, rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The content hash naming a rootfs: the recipe plus every file's destination, mode and bytes. */
export async function rootfsHash(recipe: Recipe, files: RootfsFile[], onProgress?: (message: string) => void): Promise<string> {
  const hash = createHash('sha256').update(JSON.stringify(recipe));
  for (const [i, f] of files.entries()) {
    onProgress?.(`hashing ${i + 1}/${files.length} ${f.dest}`);
    hash.update(`${f.dest}\0${f.mode}\0${await sha256File(f.source)}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** Build the tree at `dest` (must not exist). */
export async function buildTree(files: RootfsFile[], dest: string, onProgress?: (message: string) => void): Promise<void> {
  // Every dir 0755 whatever the umask (a hardened root's 077 made them 0700: no sandbox's user could enter).
  await mkdir(dest, { mode: 0o755 });
  await chmod(dest, 0o755);
  for (const dir of ROOTFS_MOUNTS) mkdirOpenSync(join(dest, dir));
  for (const [link, target] of Object.entries(ROOTFS_SYMLINKS)) await symlink(target, join(dest, link));
  for (const [i, f] of files.entries()) {
    onProgress?.(`copying ${i + 1}/${files.length} ${f.dest}`);
    const to = join(dest, f.dest);
    mkdirOpenSync(dirname(to));
    await copyFile(f.source, to);
    await chmod(to, f.mode);
  }
  await writeFile(join(dest, '.pawl-rootfs'), JSON.stringify({ files: files.map((f) => relative('/', f.dest)) }, null, 1));
}

export async function replaceAtomically(tmp: string, final: string): Promise<void> {
  try {
    await rename(tmp, final);
  } catch (e) {
    // Another builder won the race with identical content: keep theirs.
    if (['ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '')) await rm(tmp, { recursive: true, force: true });
    else throw e;
  }
}
