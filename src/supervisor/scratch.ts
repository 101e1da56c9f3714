// Per-run scratch dirs: <runDir>/<id>/workspace is the sandbox's /workspace. The sandbox can
// write anything there (links, paths past PATH_MAX, dirs it locks), so nothing here follows a
// link, and removal only starts once every process of the run is provably dead.
import { chmodSync, chownSync, constants, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { lstat, open, opendir, readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { runTool as execa } from '../util/tool.js';
import { selfRecord, type ProcessRecord } from '../hostfacts/liveness.js';
import { AT_FDCWD, AT_REMOVEDIR, errnoCode, loadLibc } from '../util/libc.js';
import { mkdirOpenSync } from '../util/private-dir.js';

export interface Scratch {
  dir: string;
  workspace: string;
}

/** The run's supervisor (pid, start time, boot, pid namespace: hostfacts/liveness.ts) and where its cgroup lives. */
export interface Owner extends ProcessRecord {
  cgroupParent: string;
}

/**
 * Create the run's dirs; the workspace is owned by the sandbox's host id (when dropping to one).
 * Synchronous: five metadata calls in pawl's own run dir (~0.2 ms). As five awaited thread-pool
 * calls they waited, each, behind the other prepare steps' work on the event loop (6-7 ms of a
 * cold run), and /workspace's filesystem, the longest chain of prepare, could start only after.
 * A failure part-way removes what it made (the caller records the dir only once it is whole).
 */
export function createScratch(runDir: string, id: string, owner: number | null, cgroupParent: string): Scratch {
  // 0711 whatever the umask: the sandbox's user passes through both to its workspace.
  mkdirOpenSync(runDir, 0o711);
  const dir = join(runDir, id);
  mkdirSync(dir, { mode: 0o711 }); // EEXIST: never another run's dir
  const workspace = join(dir, 'workspace');
  try {
    chmodSync(dir, 0o711);
    mkdirSync(workspace, { mode: 0o700 });
    if (owner !== null) chownSync(workspace, owner, owner);
    // Who owns this dir and where its cgroup lives, so gc can tell a live run from a dead one.
    writeFileSync(join(dir, 'owner'), JSON.stringify({ ...selfRecord(), cgroupParent } satisfies Owner));
  } catch (e) {
    rmSync(dir, { recursive: true, force: true }); // only what was just made here: nothing of a sandbox's yet
    throw e;
  }
  return { dir, workspace };
}

/** The owner record of a run dir (null when missing or unreadable: not pawl's, or half made). */
export async function readOwner(dir: string): Promise<Owner | Pick<Owner, 'pid' | 'cgroupParent'> | null> {
  try {
    const o = JSON.parse(await readFile(join(dir, 'owner'), 'utf8')) as Owner;
    if (typeof o.pid !== 'number' || typeof o.cgroupParent !== 'string') return null;
    // A record without start time, boot and namespace (an older pawl's) is judged by name in gc.
    return typeof o.startTime === 'number' && typeof o.bootId === 'string' && typeof o.pidNs === 'string' ? o : { pid: o.pid, cgroupParent: o.cgroupParent };
  } catch {
    return null;
  }
}

/** Test hook: called after each directory is listed, before its entries are removed (to race the walk). */
export type AfterList = (dirFd: number, names: string[]) => void;

/**
 * Remove a tree the sandbox wrote. Only called once every process of the run is dead, but a
 * cooperating run (another sandbox holding a directory fd of this one) could still swap a
 * directory for a link after it was listed. So the walk is fd-relative: each directory is
 * opened with openat(O_NOFOLLOW | O_DIRECTORY) relative to its parent's fd and listed through
 * that fd; an entry that is not a directory (a link included, whatever it points at) is
 * unlinked, never followed. Anything odd (a tree deeper than the fd limit, dirs made unwritable
 * without root) falls back to GNU rm, whose fts walk is fd-relative too, never follows a link
 * and stays on one file system.
 */
export async function removeTree(root: string, within: string, afterList?: AfterList): Promise<void> {
  const rel = relative(within, root);
  if (!rel || rel.startsWith('..') || rel.includes(`..${sep}`) || isAbsolute(rel)) throw new Error(`refusing to remove ${root}: not inside ${within}`);
  try {
    await removeAt(within, rel.split(sep), afterList);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    await chmodDirs(root);
    const r = await execa('/usr/bin/rm', ['-rf', '--one-file-system', '--', root], { reject: false });
    if (r.exitCode !== 0) throw new Error(`cannot remove ${root}: ${r.stderr.trim() || (e as Error).message}`);
  }
}

const O_DIRECTORY = 0o200000;
const O_NOFOLLOW = 0o400000;
const O_CLOEXEC = 0o2000000;
const DIR_FLAGS = O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC; // O_RDONLY is 0

function fail(what: string): never {
  const code = errnoCode();
  throw Object.assign(new Error(`${what}: ${code}`), { code });
}

/** Remove <within>/<path...>, each component opened relative to the last, none followed. */
async function removeAt(within: string, path: string[], afterList?: AfterList): Promise<void> {
  const libc = loadLibc();
  let fd = libc.openat(AT_FDCWD, within, DIR_FLAGS);
  if (fd < 0) fail(`open ${within}`);
  try {
    for (const name of path.slice(0, -1)) {
      const next = libc.openat(fd, name, DIR_FLAGS);
      if (next < 0) fail(`open ${name}`);
      libc.close(fd);
      fd = next;
    }
    await removeEntry(fd, path.at(-1)!, { afterList, mount: mountIdOf(fd), done: 0 });
  } finally {
    libc.close(fd);
  }
}

/**
 * The mount an open fd is on (/proc/self/fdinfo's mnt_id): a directory of another mount than its
 * parent's is a mount point. Not st_dev, which a btrfs subvolume (no mount) changes too.
 */
function mountIdOf(fd: number): number {
  return Number(/^mnt_id:\s*(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? NaN);
}

interface Walk {
  afterList: AfterList | undefined;
  /** The tree's mount: a directory on another is never emptied. */
  mount: number;
  /** Entries removed so far: the walk lets the event loop run every SLICE of them. */
  done: number;
}

/**
 * A sandbox can leave a million files in a plain-dir workspace; removing them is a million
 * syscalls, which in one go would hold `pawl serve`'s event loop (every other run's timers and
 * replies) for seconds. Directories are listed on libuv's threads and the walk yields every SLICE
 * entries.
 */
const SLICE = 256;

/**
 * Remove entry `name` of the directory open as `parent`, on mount `walk.mount`: a directory on
 * another (a filesystem still mounted inside the tree, a template a dead supervisor left mounted)
 * is never emptied: the removal fails, and GNU rm's --one-file-system refuses it as well.
 */
async function removeEntry(parent: number, name: string, walk: Walk): Promise<void> {
  const libc = loadLibc();
  if (++walk.done % SLICE === 0) await new Promise(setImmediate);
  const fd = libc.openat(parent, name, DIR_FLAGS);
  if (fd < 0) {
    const code = errnoCode();
    if (code === 'ENOENT') return;
    // Not a directory (ENOTDIR), or a link (ELOOP): the entry itself goes.
    if (code !== 'ENOTDIR' && code !== 'ELOOP') fail(`open ${name}`);
    if (libc.unlinkat(parent, name, 0) !== 0 && errnoCode() !== 'ENOENT') fail(`unlink ${name}`);
    return;
  }
  try {
    if (mountIdOf(fd) !== walk.mount) throw Object.assign(new Error(`${name} is a mount point: not removed`), { code: 'EXDEV' });
    // /proc/self/fd/N is the directory this fd holds, whatever its name now is.
    const names = await readdir(`/proc/self/fd/${fd}`);
    walk.afterList?.(fd, names);
    for (const child of names) await removeEntry(fd, child, walk);
  } finally {
    libc.close(fd);
  }
  if (libc.unlinkat(parent, name, AT_REMOVEDIR) !== 0 && errnoCode() !== 'ENOENT') fail(`rmdir ${name}`);
}

// Without root, a dir the sandbox made read-only (chmod 555) cannot be emptied; it is ours: open
// it up. chmod -R never follows links it meets in the tree (only a link named on the command line).
async function chmodDirs(root: string): Promise<void> {
  if (process.geteuid?.() === 0) return;
  await execa('/usr/bin/chmod', ['-R', 'u+rwx', '--', root], { reject: false });
}

/**
 * Bytes allocated under `dir`. While the sandbox runs it may swap dirs for links under our feet,
 * so a live tree is measured by du, whose fts walk never follows a link and stays on one file
 * system. Once every process of the run is dead nothing can race us, and a plain lstat walk is
 * quicker; anything odd in it (paths past PATH_MAX) falls back to du. A tree that cannot be fully
 * measured is reported as Infinity: unmeasurable counts as over the limit.
 */
export async function treeUsage(dir: string, opts: { live: boolean }): Promise<number> {
  if (!opts.live) {
    try {
      return await walkUsage(dir);
    } catch {
      /* fall through to du */
    }
  }
  const r = await execa('/usr/bin/du', ['-s', '-x', '-B1', '--', dir], { reject: false, timeout: 5000 });
  const bytes = Number(/^(\d+)/.exec(r.stdout)?.[1]);
  if (r.exitCode !== 0 || !Number.isFinite(bytes)) return Infinity;
  return bytes;
}

/**
 * Each directory opened O_NOFOLLOW and read through its fd, each entry lstat'd through it: a
 * directory swapped for a link after it was listed is neither followed nor measured (as the
 * removal, above). `dir` is the run's own workspace path, or /proc/self/fd/N/NAME below it.
 */
async function walkUsage(dir: string): Promise<number> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const at = `/proc/self/fd/${fh.fd}`;
    let total = (await fh.stat()).blocks * 512;
    for await (const entry of await opendir(at)) {
      const path = join(at, entry.name);
      total += entry.isDirectory() ? await walkUsage(path) : (await lstat(path)).blocks * 512;
    }
    return total;
  } finally {
    await fh.close();
  }
}
