// /workspace as a filesystem of its own whose size and inode count the kernel enforces: a per-run
// ext4 image (sparse, diskInodes inodes, no journal, no reserve, sized so that exactly diskSpace
// bytes are free for the task) loop-mounted on the scratch dir's workspace. Whatever the task does
// (fallocate KEEP_SIZE, files unlinked but held open, write-and-delete between samples, millions
// of empty files) ends in ENOSPC there, and the host's disk never loses more than diskSpace plus
// ext4's own metadata. Needs root and
// loop devices; elsewhere the workspace stays a plain dir (RLIMIT_FSIZE and the sampled usage
// watch only), which the policy may refuse (storage.requireWorkspaceFs).
//
// Why not the alternatives (measured on the build machines, see README "Storage"): a tmpfs
// charges its pages to the run's memory cgroup, so /workspace's 100 MB would have to fit inside
// the 64-128 MB memory limits of the trust levels; project quotas need a filesystem mounted with
// prjquota, which hosts rarely have.
import { chmodSync, chownSync, closeSync, constants, existsSync, openSync, readSync, statfsSync } from 'node:fs';
import { mkdir, open, rmdir, stat, statfs, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runTool } from '../util/tool.js';
import { loadLibc } from '../util/libc.js';
import { withDeadline } from '../util/wait.js';
import type { Policy } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { dataRanges, loopMount, unmount, unmountAsync } from '../fs/loop-mount.js';
import type { FactsCache } from '../hostfacts/cache.js';
import { sha256, statSig } from '../hostfacts/keys.js';

export const WORKSPACE_IMAGE = 'workspace.img';
/** The template mkfs makes on a cold cache, in the run's scratch dir (mounted at `<it>.mnt` meanwhile). */
export const WORKSPACE_TEMPLATE = 'workspace.template';

const mkfsPath = () => ['/usr/sbin/mkfs.ext4', '/sbin/mkfs.ext4'].find((p) => existsSync(p));

/** Why /workspace cannot get a filesystem of its own here, or null when it can. */
export function workspaceFsUnavailable(): string | null {
  if (process.geteuid?.() !== 0) return 'pawl is not root, so it cannot mount a filesystem for /workspace';
  if (!existsSync('/dev/loop-control')) return 'this host has no loop devices (/dev/loop-control)';
  if (!mkfsPath()) return 'mkfs.ext4 (e2fsprogs) is not installed';
  return null;
}

/**
 * Make and mount the workspace's filesystem, its root owned by the sandbox's host id; returns its
 * loop device ("MAJ:MIN"). That device must be in the run's io limits when the image is on a disk
 * (the run dir's: prepare.ts), since cgroup v2 charges the run's writes to the loop device, while
 * the loop driver's own writes to the image file reach the disk as nobody's (measured in the VM:
 * the run's io.stat showed 24 MB written on the loop device and nothing on the disk).
 */
export async function mountWorkspace(dir: string, workspace: string, policy: Policy, owner: number | null, facts?: FactsCache, noexec = false): Promise<string> {
  const r = policy.resources;
  const { size, ranges } = await template(dir, r.diskSpace, r.diskInodes, facts);
  const image = join(dir, WORKSPACE_IMAGE);
  // On libuv's threads: a write into the page cache can wait for the host's dirty-page throttle,
  // which must not hold `pawl serve`'s event loop (every other run's timers and replies).
  const f = await open(image, 'wx', 0o600);
  try {
    await f.truncate(size); // sparse: the host's disk pays only for what the task writes
    for (const { offset, data } of ranges) {
      const { bytesWritten } = await f.write(data, 0, data.length, offset);
      if (bytesWritten !== data.length) throw new PawlError('RuntimeError', `cannot write /workspace's filesystem image: ${bytesWritten} of ${data.length} bytes at ${offset}`);
    }
  } finally {
    await f.close();
  }
  // The loop device goes away by itself with the last unmount. noexec: as the layout says (lsm/landlock mountedNoexec).
  const loop = await loopMount(image, workspace, { scratch: true, noexec });
  const id = owner ?? 0;
  // The new filesystem's root, which nothing else can hold yet: at once, not behind the event loop's other work.
  chownSync(workspace, id, id);
  chmodSync(workspace, 0o700);
  // The fresh filesystem's free blocks: what the run uses is the difference (workspaceFs).
  fresh.set(workspace, statfsSync(workspace).bfree);
  return loop;
}

/** A fresh filesystem's image size and its data ranges (the rest of the image is sparse). */
type Template = { size: number; ranges: { offset: number; data: Buffer }[] };
const templates = new Map<string, Promise<Template>>();

/**
 * The data of a fresh filesystem of this size and inode count (a few hundred KB of a sparse
 * image), made by mkfs.ext4 once per shape and process, then written into each run's image:
 * mkfs as a process per run was the largest part of a run's set-up on a busy machine.
 */
function template(dir: string, size: number, inodes: number, facts?: FactsCache): Promise<Template> {
  const key = `${size}:${inodes}`;
  let t = templates.get(key);
  if (!t) {
    t = cachedTemplate(dir, size, inodes, facts);
    templates.set(key, t);
    t.catch(() => templates.delete(key));
  }
  return t;
}

/**
 * Every CLI command is a new process: without a cache on disk each `pawl run` would pay mkfs
 * (twice, sizing included: ~200 ms measured). Keyed on the shape and on mkfs.ext4 itself.
 */
async function cachedTemplate(dir: string, size: number, inodes: number, facts?: FactsCache): Promise<Template> {
  const name = `workspace-fs-${size}-${inodes}`;
  const key = sha256('workspace-fs-v1', String(size), String(inodes), statSig(mkfsPath() ?? 'mkfs.ext4'));
  const hit = facts?.get<{ size: number; ranges: { offset: number; data: string }[] }>(name, key);
  if (hit) return { size: hit.size, ranges: hit.ranges.map((r) => ({ offset: r.offset, data: Buffer.from(r.data, 'base64') })) };
  const made = await makeTemplate(join(dir, WORKSPACE_TEMPLATE), size, inodes);
  facts?.set(name, key, { size: made.size, ranges: made.ranges.map((r) => ({ offset: r.offset, data: r.data.toString('base64') })) });
  return made;
}

/**
 * diskSpace is what the task may store, so the image is larger by ext4's own overhead (inode
 * tables, bitmaps, descriptors: measured, 8192 inodes took 2.2 MB of a 4 MB image). mkfs at
 * diskSpace tells the overhead; the image is then made again that much larger, until it holds diskSpace.
 */
async function makeTemplate(path: string, space: number, inodes: number): Promise<Template> {
  try {
    // A larger image has a little more overhead again (bitmaps grow with it): a few rounds settle it.
    let size = space;
    for (let round = 0; ; round++) {
      const usable = await makeFs(path, size, inodes);
      if (usable >= space) break;
      if (round === 4) throw new PawlError('RuntimeError', `cannot make /workspace's filesystem: ${usable} of ${space} bytes usable`);
      await unlink(path);
      size += Math.ceil((space - usable) / 65536) * 65536;
    }
    const fd = openSync(path, 'r');
    try {
      const ranges = dataRanges(fd, size).map(([offset, length]) => {
        const data = Buffer.alloc(length);
        readSync(fd, data, 0, length, offset);
        return { offset, data };
      });
      return { size, ranges };
    } finally {
      closeSync(fd);
    }
  } finally {
    await unlink(path).catch(() => {});
  }
}

/** mkfs.ext4 on a new sparse file of `size` bytes, without lost+found; returns the bytes a task can store in it. */
async function makeFs(path: string, size: number, inodes: number): Promise<number> {
  const f = await open(path, 'wx', 0o600);
  try {
    await f.truncate(size);
  } finally {
    await f.close();
  }
  const mkfs = await runTool(mkfsPath() ?? 'mkfs.ext4', ['-q', '-F', '-N', String(inodes), '-m', '0', '-O', '^has_journal,^resize_inode', '-E', 'lazy_itable_init=1,nodiscard', path]);
  if (mkfs.exitCode !== 0) throw new PawlError('RuntimeError', `cannot make /workspace's filesystem: mkfs.ext4: ${mkfs.stderr.trim()}`);
  // Without lost+found: nothing of the host's is in the sandbox's view of /workspace.
  const mnt = `${path}.mnt`;
  await mkdir(mnt, { mode: 0o700 });
  try {
    await loopMount(path, mnt, { scratch: true });
    try {
      await rmdir(join(mnt, 'lost+found'));
      const s = await statfs(mnt);
      return s.bavail * s.bsize;
    } finally {
      unmount(mnt);
    }
  } finally {
    await rmdir(mnt);
  }
}

/** Free blocks of each mounted workspace's fresh filesystem (this process mounted it), by path. */
const fresh = new Map<string, number>();

/**
 * /workspace's usage from its own filesystem's counters (one statfs, no process, no walk), or
 * null when it has none (a plain dir, without root: then the caller walks it). Read from the
 * kernel, never from what the task said: `usedBytes` is the blocks allocated since the mount
 * (files, directories, and files unlinked but still held open, which no walk sees); `full` when
 * no inode is left, or less free space than ext4 keeps back when it starts refusing writes
 * (measured: a 16 MB image refused a 1 MB write with 686 KB free; ext4 checks against a per-CPU
 * watermark).
 */
export async function workspaceFs(workspace: string): Promise<{ usedBytes: number; full: boolean } | null> {
  const free0 = fresh.get(workspace);
  if (free0 === undefined) return null;
  try {
    const s = await statfs(workspace);
    if (s.type !== EXT4_MAGIC) return null; // unmounted under us: not its filesystem any more
    const slack = Math.max(256 * 1024, Math.min(1024 * 1024, 0.08 * s.blocks * s.bsize));
    return { usedBytes: Math.max(0, free0 - s.bfree) * s.bsize, full: s.bavail * s.bsize < slack || s.ffree === 0 };
  } catch {
    return null;
  }
}
const EXT4_MAGIC = 0xef53;

/**
 * How long unmounting waits for the workspace's data to reach its image. Dirty pages of a run are
 * written back under the run's own io.max (cgroup writeback), at the policy's floor rate at
 * worst: a task that dirtied 100 MB at 1 MB/s would hold an unmount for 100 s.
 */
export const UNMOUNT_FLUSH_MS = 3000;
/** The same for a teardown after the result has gone back (the pool's, runTask's by default): nobody waits for it. */
export const BACKGROUND_UNMOUNT_FLUSH_MS = 30_000;

/**
 * Unmount the workspace if it is a mount (detached lazily when still busy). Only after the run's
 * processes are dead. Without root nothing was mounted, and nothing is tried.
 *
 * umount(2) writes back what is dirty first, in the calling thread, uninterruptibly: so the
 * filesystem is flushed first with syncfs on one of libuv's threads, under a deadline. When
 * writeback takes longer, the mount stays (this throws, the caller records it for gc, and gc
 * tries again later: by then the flush has ended) and the supervisor's thread never sleeps in it.
 */
export async function unmountWorkspace(workspace: string, flushMs = UNMOUNT_FLUSH_MS): Promise<void> {
  if (process.geteuid?.() !== 0) return;
  if (!(await flushed(workspace, flushMs))) {
    throw new Error(`cannot unmount ${workspace} yet: its data was still being written back after ${flushMs} ms`);
  }
  fresh.delete(workspace);
  const errno = await unmountAsync(workspace);
  if (errno === 0 || errno === EINVAL || errno === ENOENT) return; // EINVAL: not a mount point
  const lazy = unmount(workspace, true);
  if (lazy !== 0 && lazy !== EINVAL) throw new Error(`cannot unmount ${workspace}: errno ${errno}, then ${lazy}`);
}
const [ENOENT, EINVAL] = [2, 22];

/**
 * syncfs on the workspace's own filesystem, off the main thread: true once it returned within
 * flushMs (or there is no filesystem of its own to flush). Past the deadline the call goes on in
 * its thread until writeback ends (its fd is closed then), and a later call waits on that same
 * flush. At most MAX_FLUSHING such threads at once, so that slow flushes never take all of
 * libuv's threads (4) from every other file operation of the process: past that, a call waits for
 * a slot within its deadline.
 */
async function flushed(workspace: string, flushMs: number): Promise<boolean> {
  const deadline = Date.now() + flushMs;
  let sync = flushing.get(workspace);
  if (!sync) {
    try {
      if ((await stat(workspace)).dev === (await stat(dirname(workspace))).dev) return true; // not a mount
    } catch {
      return true; // gone: nothing to flush (unmount says the rest)
    }
    // A slot, within the same deadline: several teardowns at once (a pool closing) wait their turn
    // (they once failed at once, and their runs were left for gc).
    while (flushing.size >= MAX_FLUSHING && !flushing.has(workspace)) {
      const left = deadline - Date.now();
      if (left <= 0 || (await withDeadline(Promise.race(flushing.values()), left)) === undefined) return false;
    }
    sync = flushing.get(workspace);
  }
  if (!sync) {
    let fd: number;
    try {
      fd = openSync(workspace, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    } catch {
      return true;
    }
    const started = loadLibc()
      .syncfsAsync(fd)
      .then(
        () => true,
        () => true, // a failed syncfs leaves it to umount to say what is wrong
      )
      .finally(() => {
        closeSync(fd);
        flushing.delete(workspace);
      });
    flushing.set(workspace, started);
    sync = started;
  }
  return (await withDeadline(sync, Math.max(0, deadline - Date.now()))) === true;
}
const flushing = new Map<string, Promise<boolean>>();
const MAX_FLUSHING = 2;
