// Per-run scratch dirs: <runDir>/<id>/workspace is the sandbox's /workspace. The sandbox can
// write anything there (links, paths past PATH_MAX, dirs it locks), so nothing here follows a
// link, and removal only starts once every process of the run is provably dead.
import { chown, lstat, mkdir, opendir, readFile, rmdir, unlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { runTool as execa } from '../util/tool.js';

export interface Scratch {
  dir: string;
  workspace: string;
}

export interface Owner {
  pid: number;
  cgroupParent: string;
}

/** Create the run's dirs; the workspace is owned by the sandbox's host id (when dropping to one). */
export async function createScratch(runDir: string, id: string, owner: number | null, cgroupParent: string): Promise<Scratch> {
  await mkdir(runDir, { recursive: true, mode: 0o711 });
  const dir = join(runDir, id);
  await mkdir(dir, { mode: 0o711 });
  const workspace = join(dir, 'workspace');
  await mkdir(workspace, { mode: 0o700 });
  if (owner !== null) await chown(workspace, owner, owner);
  // Who owns this dir and where its cgroup lives, so gc can tell a live run from a dead one.
  await writeFile(join(dir, 'owner'), JSON.stringify({ pid: process.pid, cgroupParent } satisfies Owner));
  return { dir, workspace };
}

/** The owner record of a run dir (null when missing or unreadable: not pawl's, or half made). */
export async function readOwner(dir: string): Promise<Owner | null> {
  try {
    const o = JSON.parse(await readFile(join(dir, 'owner'), 'utf8')) as Owner;
    return typeof o.pid === 'number' && typeof o.cgroupParent === 'string' ? o : null;
  } catch {
    return null;
  }
}

/**
 * Remove a tree the sandbox wrote. Only called once every process of the run is dead. The fast
 * path walks it here with lstat (links are unlinked, never followed); anything odd the sandbox
 * left (paths past PATH_MAX, dirs it made unwritable) falls back to GNU rm, whose fts walk is
 * fd-relative, never follows a link and stays on one file system.
 */
export async function removeTree(root: string, within: string): Promise<void> {
  const rel = relative(within, root);
  if (!rel || rel.startsWith('..') || rel.includes(`..${sep}`) || isAbsolute(rel)) throw new Error(`refusing to remove ${root}: not inside ${within}`);
  let st;
  try {
    st = await lstat(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isDirectory()) return unlink(root);
  try {
    await removeDirContents(root);
    await rmdir(root);
  } catch {
    await chmodDirs(root);
    const r = await execa('/usr/bin/rm', ['-rf', '--one-file-system', '--', root], { reject: false });
    if (r.exitCode !== 0) throw new Error(`cannot remove ${root}: ${r.stderr.trim()}`);
  }
}

// Without root, a dir the sandbox made read-only (chmod 555) cannot be emptied; it is ours: open
// it up. chmod -R never follows links it meets in the tree (only a link named on the command line).
async function chmodDirs(root: string): Promise<void> {
  if (process.geteuid?.() === 0) return;
  await execa('/usr/bin/chmod', ['-R', 'u+rwx', '--', root], { reject: false });
}

async function removeDirContents(dir: string): Promise<void> {
  for await (const entry of await opendir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await removeDirContents(path);
      await rmdir(path);
    } else {
      await unlink(path); // files, links (never followed), fifos, sockets
    }
  }
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

async function walkUsage(dir: string): Promise<number> {
  let total = (await lstat(dir)).blocks * 512;
  for await (const entry of await opendir(dir)) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? await walkUsage(path) : (await lstat(path)).blocks * 512;
  }
  return total;
}
