// Per-run scratch dirs: <runDir>/<id>/workspace is the sandbox's /workspace. The sandbox can
// write anything there, links included, so every walk here uses lstat and never follows a link,
// and removal only starts once every process of the run is dead (no race with the sandbox).
import { chmod, chown, lstat, mkdir, opendir, rmdir, unlink, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

export interface Scratch {
  dir: string;
  workspace: string;
}

/** Create the run's dirs; the workspace is owned by the sandbox's host id (when dropping to one). */
export async function createScratch(runDir: string, id: string, owner: number | null): Promise<Scratch> {
  await mkdir(runDir, { recursive: true, mode: 0o711 });
  const dir = join(runDir, id);
  await mkdir(dir, { mode: 0o711 });
  const workspace = join(dir, 'workspace');
  await mkdir(workspace, { mode: 0o700 });
  if (owner !== null) await chown(workspace, owner, owner);
  // Who owns this dir, so gc can tell a live run from one whose supervisor died.
  await writeFile(join(dir, 'owner'), `${process.pid}\n`);
  return { dir, workspace };
}

/** Remove a tree the sandbox wrote, never following links. `root` must lie inside `within`. */
export async function removeTree(root: string, within: string): Promise<void> {
  const rel = relative(within, root);
  if (!rel || rel.startsWith('..') || rel.includes(`..${sep}`)) throw new Error(`refusing to remove ${root}: not inside ${within}`);
  let st;
  try {
    st = await lstat(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isDirectory()) return unlink(root);
  await removeDirContents(root);
  await rmdir(root);
}

async function removeDirContents(dir: string): Promise<void> {
  let handle;
  try {
    handle = await opendir(dir);
  } catch (e) {
    // The sandbox may have made its own dir unreadable; we own it (or are root): open it up.
    if ((e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
    await chmod(dir, 0o700);
    handle = await opendir(dir);
  }
  for await (const entry of handle) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await removeDirContents(path);
      await rmdir(path);
    } else {
      await unlink(path); // files, links (never followed), fifos, sockets
    }
  }
}

/** Bytes allocated under `dir` (lstat, no links followed); stops counting past `stopAbove`. */
export async function treeUsage(dir: string, stopAbove = Infinity): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    let handle;
    try {
      handle = await opendir(d);
    } catch {
      return; // vanished or unreadable mid-run: counted on the next poll
    }
    for await (const entry of handle) {
      if (total > stopAbove) return;
      const path = join(d, entry.name);
      try {
        const st = await lstat(path);
        total += st.blocks * 512;
        if (st.isDirectory()) await walk(path);
      } catch {
        /* raced with the task deleting it */
      }
    }
  };
  await walk(dir);
  return total;
}
