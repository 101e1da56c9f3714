// The policy's mounts as typed entries every backend renders the same way (bwrap argv, OCI
// mounts), and the host-side part of a run: each bind source and volume opened without following
// symlinks (fs/resolve.ts), handed to the runtime as an fd, never as a name it would resolve again.
import { closeSync, existsSync, fstatSync, lstatSync, type Stats } from 'node:fs';
import { mkdir, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { PawlError } from '../errors.js';
import { errnoCode, loadLibc } from '../util/libc.js';
import { unmount } from './loop-mount.js';
import { dirname, join } from 'node:path';
import { RECIPE_DIR } from '../rootfs/build.js';
import type { Policy } from '../config/policy.js';
import type { HostConfig } from '../config/host.js';
import { ROOTFS_MOUNTS } from '../rootfs/layout.js';
import { openNoSymlinks } from './resolve.js';
import { ensureVolume } from './volumes.js';
import { under } from '../config/filesystem.js';
import { mkdirOpenSync } from '../util/private-dir.js';

/** A mount whose source the supervisor opens: `slot` is its index among the run's opened sources. */
export type SourceMount =
  | { kind: 'bind'; source: string; target: string; readonly: boolean; slot: number }
  | { kind: 'volume'; volume: string; size: number; target: string; readonly: boolean; slot: number };
export type PolicyMount = SourceMount | { kind: 'tmpfs'; target: string; size: number };
export type FsMount =
  | PolicyMount
  /** A blocked dir of the layout: an empty tmpfs of mode 000, read-only. */
  | { kind: 'blocked-dir'; target: string }
  /** A blocked file of the layout: the rootfs's mode-000 empty file bound over it. */
  | { kind: 'blocked-file'; target: string };

/** Pure: the policy's binds, volumes and tmpfs mounts, in order. */
export function policyMounts(policy: Policy): PolicyMount[] {
  const out: PolicyMount[] = [];
  let slot = 0;
  for (const b of policy.filesystem.binds) out.push({ kind: 'bind', source: b.src, target: b.dst, readonly: b.readOnly, slot: slot++ });
  for (const m of policy.filesystem.mounts) {
    if (m.type === 'bind') out.push({ kind: 'bind', source: m.source, target: m.target, readonly: m.readonly, slot: slot++ });
    else if (m.type === 'volume') out.push({ kind: 'volume', volume: m.source, size: m.size, target: m.target, readonly: m.readonly, slot: slot++ });
    else out.push({ kind: 'tmpfs', target: m.target, size: m.size });
  }
  return out;
}

/**
 * A path of the rootfs tree; when that tree is not built (explain's placeholder path), the recipe's
 * own files/ dir, which is what the rootfs's /etc is copied from.
 */
function rootfsStat(rootfs: string, path: string): Stats | undefined {
  if (existsSync(rootfs)) return lstatSync(`${rootfs}${path}`, { throwIfNoEntry: false });
  return lstatSync(join(RECIPE_DIR, 'files', path), { throwIfNoEntry: false });
}

/** How each blocked path is kept from the task, one line each (explain), with the covers to mount. */
export interface BlockedPlan {
  covers: FsMount[];
  lines: string[];
}

/**
 * Pure given the rootfs tree: each blocked path is absent from the layout (nothing there), covered
 * (a path of the rootfs), or narrowed (/proc and /dev: node needs parts of them).
 */
export function blockedPlan(policy: Policy, rootfs: string): BlockedPlan {
  const covers: FsMount[] = [];
  const lines: string[] = [];
  for (const path of policy.filesystem.blockedPaths) {
    if (under(path, '/proc') || under('/proc', path)) {
      lines.push(`${path}: narrowed, not removed: node and the harness read /proc/self; a new procfs of the sandbox's own pid namespace, with Docker's masked and read-only /proc paths`);
    } else if (under(path, '/dev') || under('/dev', path)) {
      lines.push(`${path}: narrowed, not removed: node needs /dev/null and /dev/urandom; only null, zero, full, random, urandom, tty and the fd links are there`);
    } else if (ROOTFS_MOUNTS.some((m) => under(path, m) || under(m, path))) {
      // (A path holding a rootfs dir, or under /lib's link, is refused by the policy's schema.)
      const st = rootfsStat(rootfs, path);
      if (!st) lines.push(`${path}: absent: pawl's rootfs has no such path`);
      else if (st.isDirectory()) (covers.push({ kind: 'blocked-dir', target: path }), lines.push(`${path}: covered by an empty read-only tmpfs of mode 000`));
      else (covers.push({ kind: 'blocked-file', target: path }), lines.push(`${path}: covered by an empty file of mode 000 (EACCES)`));
    } else {
      lines.push(`${path}: absent: not mounted in the sandbox (ENOENT)`);
    }
  }
  return { covers, lines };
}

/** The run's opened sources: fds in slot order, and for runc/crun the staged paths. */
export interface OpenedSources {
  fds: number[];
  /** runc/crun: a bind of each fd's object on a path of pawl's own (see stage()); null for bwrap. */
  staged: string[] | null;
}

/**
 * Open every bind source and volume (made and mounted on first use) without following symlinks.
 * bwrap binds the fds themselves (--bind-fd). runc and crun open mount sources by path inside the
 * container's new mount namespace, where a /proc/<pid>/fd magic link names a mount of the host's
 * namespace and cannot be bound (EINVAL): for them each fd's object is bound first, by the
 * supervisor in the host's namespace, on a path under <runDir>/.stage (mode 0700 in the 0711 run
 * dir: only root can reach it) where no task writes; that path is what config.json names, and it
 * is detached once the runtime has made its mounts. Under the run dir, not the state dir, so that
 * supervisors with run dirs of their own (test suites side by side) never share it.
 */
export async function openSources(policy: Policy, host: HostConfig, runId: string): Promise<OpenedSources> {
  const opened: OpenedSources = { fds: [], staged: policy.runtime === 'bwrap' ? null : [] };
  try {
    for (const m of policyMounts(policy)) {
      if (m.kind === 'bind') opened.fds.push(openNoSymlinks(m.source, `mount source of ${m.target}`));
      else if (m.kind === 'volume') opened.fds.push(openNoSymlinks(await ensureVolume(host.stateDir, m.volume, m.size), `volume "${m.volume}"`));
      else continue;
      if (opened.staged) opened.staged.push(await stage(opened.fds.at(-1)!, join(host.runDir, '.stage'), `${runId}-${opened.fds.length - 1}`, m.readonly));
    }
  } catch (e) {
    await closeSources(opened);
    throw e;
  }
  return opened;
}

const MS_BIND = 4096;
const MS_REC = 16384;

// <linux/mount.h>
const AT_RECURSIVE = 0x8000;
const AT_SYMLINK_NOFOLLOW = 0x100;
const MOUNT_ATTR_RDONLY = 0x1;
const MOUNT_ATTR_NOSUID = 0x2;
const MOUNT_ATTR_NODEV = 0x4;
const MS_PRIVATE = 1 << 18;

async function stage(fd: number, dir: string, name: string, readonly: boolean): Promise<string> {
  // The run dir as the scratch dirs make it (0711), then the stage in it (0700): a recursive mkdir
  // with 0700 would make the run dir 0700 too.
  mkdirOpenSync(dirname(dir), 0o711);
  await mkdir(dir, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
  const point = join(dir, name);
  if (fstatSync(fd).isDirectory()) await mkdir(point, { mode: 0o700 });
  else await writeFile(point, '', { mode: 0o600, flag: 'wx' });
  // The magic link names the open object itself: nothing is looked up by name again.
  if (loadLibc().mount(`/proc/self/fd/${fd}`, point, null as unknown as string, MS_BIND | MS_REC, null) < 0) {
    const why = errnoCode();
    await rm(point, { force: true, recursive: false }).catch(() => {});
    throw new PawlError('RuntimeError', `cannot stage a mount source on ${point}: ${why}`);
  }
  // The stage and every mount under it (a sub-mount of the source) read-only when the bind is,
  // nosuid and nodev: the runtime's bind of the stage inherits these. Its own options reach less:
  // runc remounts the bind's top mount only (a tmpfs under a read-only bind stayed writable,
  // measured), crun 1.8 applies nosuid and nodev to no read-write bind at all ("rw,relatime" in
  // the container) and refuses the recursive forms on a file.
  // Private as well: a clone of a shared source stays in its peer group, and a mount that appears
  // under the source later (an automount) would reach the stage, and the sandbox, without them.
  const attr = Buffer.alloc(32); // struct mount_attr: attr_set, attr_clr, propagation, userns_fd
  attr.writeBigUInt64LE(BigInt(MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0)), 0);
  attr.writeBigUInt64LE(BigInt(MS_PRIVATE), 16);
  if (loadLibc().mountSetattr(point, AT_RECURSIVE | AT_SYMLINK_NOFOLLOW, attr) < 0) {
    const why = errnoCode();
    await removeStaged(point).catch(() => {});
    const what = `cannot make the staged mount source ${point} private, ${readonly ? 'read-only, ' : ''}nosuid and nodev with its sub-mounts`;
    if (why === 'ENOSYS') throw new PawlError('HostUnsupported', `${what}: this kernel has no mount_setattr (Linux 5.12 or later; runtime bwrap needs none)`);
    throw new PawlError('RuntimeError', `${what} (mount_setattr): ${why}`);
  }
  return point;
}

/** Close the fds and detach the staged binds (each is then an empty dir or file of pawl's). */
export async function closeSources(s: OpenedSources | null): Promise<void> {
  if (!s) return;
  for (const fd of s.fds.splice(0)) closeSync(fd);
  for (const point of s.staged?.splice(0) ?? []) await removeStaged(point).catch(() => {});
}

const EINVAL = 22;

/**
 * The staged sources under <runDir>/.stage, each with the run id it belongs to (its name is
 * `<run id>-<slot>`). A stage lives from a run's prepare to its runtime's create: one found later
 * was left by a supervisor that died in between (gc.ts takes those whose run is over).
 */
export async function stagedSources(runDir: string): Promise<{ runId: string; path: string }[]> {
  const dir = join(runDir, '.stage');
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.flatMap((name) => {
    const runId = /^(.+)-\d+$/.exec(name)?.[1];
    return runId ? [{ runId, path: join(dir, name) }] : [];
  });
}

/**
 * Detach one staged source of a run that is over, and remove its (then empty) mount point. Never
 * recursive: a point that is still a mount (the detach failed) keeps what it shows.
 */
export async function removeStaged(path: string): Promise<void> {
  const r = unmount(path, true);
  if (r !== 0 && r !== EINVAL) throw new PawlError('RuntimeError', `cannot detach the staged source ${path}: errno ${r}`);
  await rm(path, { recursive: false, force: true }).catch(() => rmdir(path));
}

/** runc/crun: what config.json names as each source mount's source. */
export const ociSourcePaths = (s: OpenedSources): string[] | null => s.staged;
