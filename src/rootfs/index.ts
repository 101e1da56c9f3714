// The rootfs cache: <stateDir>/rootfs/<hash>. Hashing node (~100 MB) on every run would cost
// ~200 ms, so a small index maps the sources' stat signature to the hash; any change to a source
// (new node, new library, edited recipe or harness) changes the signature and forces a re-hash.
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, read, realpathSync, statSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { loadLibc } from '../util/libc.js';
import { basename, dirname, join, relative } from 'node:path';
import { ROOTFS_MOUNTS, ROOTFS_SYMLINKS } from './layout.js';
import { PawlError } from '../errors.js';
import { mkdirOpenSync } from '../util/private-dir.js';
import type { HostConfig } from '../config/host.js';
import { buildTree, loadRecipe, replaceAtomically, RECIPE_DIR, rootfsFiles, rootfsHash, sha256File, type RootfsFile } from './build.js';
import { factsCache, type FactsCache } from '../hostfacts/cache.js';
import { sha256, statSig } from '../hostfacts/keys.js';
import { assertTrustedStateDir } from '../hostfacts/trusted-dir.js';

export interface RootfsInfo {
  path: string;
  hash: string;
  built: boolean;
  files: { dest: string; source: string; bytes: number }[];
  bytes: number;
}

// The per-run check stats and opens each of the tree's ~30 files synchronously: microseconds
// each, where a promise per call waited for a thread-pool round trip (measured: the check took
// 35-55 ms of a CLI run on a loaded 2-core host).
async function signature(files: RootfsFile[]): Promise<string> {
  const parts = [JSON.stringify(statSync(join(RECIPE_DIR, 'recipe.json')).mtimeMs)];
  for (const f of files) {
    const s = statSync(f.source);
    parts.push(`${f.dest}:${f.source}:${s.ino}:${s.size}:${s.mtimeMs}`);
  }
  return parts.join('|');
}

const memo = new Map<string, string>(); // signature -> path, per process

/**
 * Every dir of a built tree (relative, "" its top) with the names buildTree puts in it: the files'
 * dirs and their parents, the rootfs mount dirs, the links, the marker.
 */
function treeEntries(files: RootfsFile[]): Map<string, Set<string>> {
  const dirs = new Map<string, Set<string>>([['', new Set(['.pawl-rootfs', ...Object.keys(ROOTFS_SYMLINKS).map((l) => l.slice(1))])]]);
  const add = (rel: string) => {
    for (let child = rel; child !== ''; child = dirname(child) === '.' ? '' : dirname(child)) {
      const parent = dirname(child) === '.' ? '' : dirname(child);
      if (!dirs.has(parent)) dirs.set(parent, new Set());
      dirs.get(parent)!.add(basename(child));
    }
  };
  for (const m of ROOTFS_MOUNTS) add(m.slice(1));
  for (const f of files) add(relative('/', f.dest));
  for (const f of files) dirs.delete(relative('/', f.dest)); // a file, not a dir
  return dirs;
}

/**
 * The built tree is still what was built: every file's and dir's stat signature (inode, size,
 * mtime, ctime: a dir's change with any entry added, removed or renamed in it) equals the one
 * recorded when it was built or last checked. Otherwise the tree is compared with what buildTree
 * makes: each dir holds exactly its names (a file added anywhere, an /etc/ld.so.preload, is one
 * too many), each file is a regular file of its mode with its source's content, the links are
 * the links; any difference and the tree is not trusted.
 */
async function treeIntact(facts: FactsCache, hash: string, path: string, files: RootfsFile[]): Promise<boolean> {
  const key = treeKey(hash, path, files);
  if (facts.get(`rootfs-tree-${hash}`, key)) return true;
  for (const [dir, names] of treeEntries(files)) {
    const found = await readdir(join(path, dir)).catch(() => null);
    if (!found || found.length !== names.size || found.some((n) => !names.has(n))) return false;
  }
  for (const [link, target] of Object.entries(ROOTFS_SYMLINKS)) {
    if ((await readlink(join(path, link)).catch(() => null)) !== target) return false;
  }
  for (const f of files) {
    const st = await lstat(join(path, f.dest)).catch(() => null);
    if (!st || !st.isFile() || (st.mode & 0o7777) !== f.mode) return false;
    if (f.mode === 0) {
      // The blocked-path placeholder: an empty file no one may open (not even to hash it, without root).
      const st = await stat(join(path, f.dest)).catch(() => null);
      if (!st || !st.isFile() || st.size !== 0 || (st.mode & 0o7777) !== 0) return false;
      continue;
    }
    const [a, b] = await Promise.all([sha256File(join(path, f.dest)).catch(() => 'missing'), sha256File(f.source)]);
    if (a !== b) return false;
  }
  facts.set(`rootfs-tree-${hash}`, key, true);
  return true;
}

/**
 * Trees replaced by a rebuild, once no sandbox of the trust levels' wall times can still run from
 * them: a day on (system's is an hour; it was 10 minutes, shorter than trusted's). Removing a
 * tree's files would pull them from under a sandbox bound to it; the rename does not.
 */
const REPLACED_KEPT_MS = 24 * 3600_000;
async function removeOldTrees(root: string): Promise<void> {
  const cutoff = Date.now() - REPLACED_KEPT_MS;
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const when = Number(/^\.old-(\d+)-/.exec(name)?.[1]);
    if (when && when < cutoff) await rm(join(root, name), { recursive: true, force: true }).catch(() => {});
  }
}

const treeKey = (hash: string, path: string, files: RootfsFile[]) =>
  sha256(hash, ...files.map((f) => `${f.dest}=${statSig(join(path, f.dest))}`), ...[...treeEntries(files).keys()].map((d) => `${d}/=${statSig(join(path, d))}`));

/**
 * Bring every file into the page cache before a sandbox needs it, on every run (pages are evicted
 * under memory pressure, and a host reboots): a sandbox's disk reads are throttled (io.max /
 * blkio) and counted, and loading node from a cold disk at 10 MB/s takes seconds billed to the
 * task (measured after a drop_caches: 57 MB read in the sandbox, a trivial task's 5 s Timeout).
 * Each file is checked first (cachestat, or mincore: libc.ts); for those not all in memory
 * posix_fadvise(WILLNEED) starts the reads at once, and each is then read through here (the I/O is
 * the supervisor's), waiting for its readahead. A resident tree costs ~0.2 ms per run.
 */
async function warm(path: string, files: RootfsFile[]): Promise<void> {
  // Not the blocked placeholder: empty, and unreadable without root.
  const fds = files.filter((f) => f.mode !== 0).map((f) => openSync(join(path, f.dest), 'r'));
  try {
    // Asked before any readahead: cachestat counts pages a readahead has only begun to read.
    const cold = fds.filter((fd) => !allResident(fd));
    for (const fd of cold) fadviseWillNeed(fd);
    for (const fd of cold) {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let at = 0; ; ) {
        const n = await readAt(fd, buf, at);
        if (n === 0) break;
        at += n;
      }
    }
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** A read on one of libuv's threads: the bytes read (0 at the end). */
const readAt = (fd: number, buf: Buffer, at: number) =>
  new Promise<number>((resolve, reject) => read(fd, buf, 0, buf.length, at, (e, n) => (e ? reject(e) : resolve(n))));

/** Every page of the file on fd is in the page cache (false when that cannot be told: read it through). */
function allResident(fd: number): boolean {
  try {
    return loadLibc().allResident(fd, fstatSync(fd).size);
  } catch {
    return false;
  }
}

const POSIX_FADV_WILLNEED = 3;
function fadviseWillNeed(fd: number): void {
  try {
    loadLibc().posix_fadvise(fd, 0n, 0n, POSIX_FADV_WILLNEED);
  } catch {
    /* no libc binding: the read-through below goes without readahead */
  }
}

/** Make sure the rootfs exists and return its path; builds it on first use. */
type EnsureOptions = { rebuild?: boolean; onProgress?: (message: string) => void };
type Ensured = { path: string; hash: string; built: boolean };
/** Concurrent callers in one process (a pool warming several sandboxes) share one check or build. */
const inflight = new Map<string, Promise<Ensured>>();

export function ensureRootfs(host: HostConfig, opts: EnsureOptions = {}): Promise<Ensured> {
  if (opts.rebuild) return ensureRootfsOnce(host, opts);
  const key = host.stateDir;
  const pending = inflight.get(key);
  if (pending) return pending;
  const p = ensureRootfsOnce(host, opts).finally(() => inflight.delete(key));
  inflight.set(key, p);
  return p;
}

async function ensureRootfsOnce(host: HostConfig, opts: EnsureOptions): Promise<Ensured> {
  // Every caller (a run, pawl serve's start, pawl rootfs build) trusts what is there only if it is pawl's alone.
  assertTrustedStateDir(host.stateDir, host.runDir);
  const facts = factsCache(host.stateDir);
  const recipe = await loadRecipe();
  opts.onProgress?.('finding the shared libraries of the recipe\'s programs');
  const files = await rootfsFiles(recipe, facts);
  let rebuild = opts.rebuild ?? false;
  const sig = await signature(files);
  const root = join(host.stateDir, 'rootfs');
  const indexFile = join(root, 'index.json');
  if (!opts.rebuild) {
    const known = memo.get(`${root}\0${sig}`); // per state dir: a process may use several
    if (known) {
      await warm(known, files);
      return { path: known, hash: known.slice(root.length + 1), built: false };
    }
    const index = await readIndex(indexFile);
    const hash = index[sig];
    // A tree changed after it was built (by hand, a disk error, a hostile writer) is rebuilt.
    if (hash && (await exists(join(root, hash, '.pawl-rootfs'))) && !(await treeIntact(facts, hash, join(root, hash), files))) rebuild = true;
    else if (hash && (await exists(join(root, hash, '.pawl-rootfs')))) {
      reachable(join(root, hash));
      await warm(join(root, hash), files);
      memo.set(`${root}\0${sig}`, join(root, hash));
      return { path: join(root, hash), hash, built: false };
    }
  }
  mkdirOpenSync(root);
  const hash = await rootfsHash(recipe, files, opts.onProgress);
  const path = join(root, hash);
  let built = false;
  if (rebuild || !(await exists(join(path, '.pawl-rootfs')))) {
    const tmp = join(root, `.build-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await buildTree(files, tmp, opts.onProgress);
      // A rebuilt tree replaces the old one in two renames, never by removing it first: sandboxes
      // of other runs may be starting from it right now. The old tree is removed later (below).
      if (rebuild && (await exists(path))) await rename(path, join(root, `.old-${Date.now()}-${randomBytes(6).toString('hex')}`));
      await replaceAtomically(tmp, path);
      built = true;
      facts.set(`rootfs-tree-${hash}`, treeKey(hash, path, files), true);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  await removeOldTrees(root);
  const index = await readIndex(indexFile);
  delete index[sig]; // then last: the newest entry
  index[sig] = hash;
  const kept = await boundIndex(root, index);
  // A name of its own per write: two callers in one process (or two processes) never share a temp file.
  const tmpIndex = `${indexFile}.${process.pid}.${randomBytes(6).toString('hex')}`;
  await writeFile(tmpIndex, JSON.stringify(kept));
  await replaceAtomically(tmpIndex, indexFile);
  reachable(path);
  opts.onProgress?.('reading it into the page cache');
  await warm(path, files);
  memo.set(`${root}\0${sig}`, path);
  return { path, hash, built };
}

/**
 * Run as root, a sandbox's processes run as other users (an unprivileged id, the user namespace's
 * mapped root), who pass through every dir above the rootfs as "others": a dir without o+x there
 * (a state dir made 0700) would fail every run at bwrap's or the runtime's mount with EACCES.
 * Said here, once per process, naming the dir.
 */
function reachable(path: string): void {
  const closed = closedAncestor(path);
  if (closed) {
    throw new PawlError('HostUnsupported', `the rootfs ${path} is out of the sandboxes' reach: ${closed.dir} has mode ${closed.mode.toString(8).padStart(4, '0')}, and their users pass through it as others (chmod o+x ${closed.dir})`);
  }
}

/**
 * The first of the dir `path` and the dirs above it (its real path: a linked state dir is reached
 * through its target's dirs) that the sandboxes' users cannot pass through, run as root; null when
 * there is none, or when pawl is not root (a user's own sandboxes run as that user, the owner).
 * Also doctor's.
 */
export function closedAncestor(path: string): { dir: string; mode: number } | null {
  if (process.geteuid?.() !== 0) return null;
  for (let dir = realpathSync(path); ; dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o777;
    if (!(mode & 0o001)) return { dir, mode };
    if (dirname(dir) === dir) return null;
  }
}

/** Without building: is the rootfs for the current sources built, and was an older one (doctor)? */
export async function rootfsStatus(host: HostConfig): Promise<{ current: string | null; older: string[] }> {
  const root = join(host.stateDir, 'rootfs');
  const index = await readIndex(join(root, 'index.json'));
  const hash = index[await signature(await rootfsFiles(await loadRecipe(), factsCache(host.stateDir)))];
  const current = hash && (await exists(join(root, hash, '.pawl-rootfs'))) ? join(root, hash) : null;
  return { current, older: Object.values(index).filter((h) => h !== hash) };
}

export async function rootfsInfo(host: HostConfig): Promise<RootfsInfo> {
  const { path, hash, built } = await ensureRootfs(host);
  const files = await rootfsFiles(await loadRecipe());
  const list = await Promise.all(files.map(async (f) => ({ dest: f.dest, source: f.source, bytes: (await stat(join(path, f.dest))).size })));
  return { path, hash, built, files: list, bytes: list.reduce((n, f) => n + f.bytes, 0) };
}

/**
 * The index, newest entries last, bounded: entries whose tree is gone are dropped, and at most
 * INDEX_KEPT are kept. Every build of pawl's harness (every upgrade, every \`npm run build\`) adds
 * a signature, and the whole index is read on every run of a new process (measured: 581 KB, 364
 * entries, after a few hundred builds here). A dropped entry costs its sources one re-hash.
 */
const INDEX_KEPT = 32;
async function boundIndex(root: string, index: Record<string, string>): Promise<Record<string, string>> {
  const entries = Object.entries(index).slice(-INDEX_KEPT);
  const present = await Promise.all(entries.map(([, h]) => exists(join(root, h, '.pawl-rootfs'))));
  return Object.fromEntries(entries.filter((_, i) => present[i]));
}

async function readIndex(file: string): Promise<Record<string, string>> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}
