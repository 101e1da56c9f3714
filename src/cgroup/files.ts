// Reading, writing and removing cgroup files and directories, the same way for v1 and v2.
import { closeSync, constants, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import { PawlError } from '../errors.js';
import { pollUntil, soonThenEvery5ms } from '../util/wait.js';
import { hostLacks } from '../hostfacts/capabilities.js';
import type { HostOps } from './options.js';
import type { CgroupFileWrite } from './types.js';

export interface PlannedWrite extends CgroupFileWrite {
  /**
   * What create() does when the kernel has no such file. Default: fail (HostUnsupported).
   * 'skip': a tuning knob whose absence costs no protection.
   * 'swap': it only matters while swap is active, so skip it when no swap is.
   */
  ifMissing?: 'skip' | 'swap';
}

export function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

export async function exists(path: string): Promise<boolean> {
  return existsSync(path);
}

/**
 * Control files are read synchronously: they are the kernel's in-memory counters (no disk I/O
 * can hold the read), and a poll reads about a dozen of them, each of which as a promise was
 * four thread-pool round trips: measured, most of the supervisor's CPU time per poll.
 */
export async function readText(path: string): Promise<string> {
  return readFileSync(path, 'utf8');
}

export async function readOptional(path: string): Promise<string | null> {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (errno(e) === 'ENOENT') return null;
    throw e;
  }
}

export async function readNumber(path: string): Promise<number> {
  return Number((await readText(path)).trim());
}

const parsePids = (text: string): number[] => text.split('\n').filter((l) => l.trim() !== '').map(Number);

/** The PIDs listed in a cgroup.procs file, now (none when it cannot be read): for the pollers. */
export function readPidsSync(procsFile: string): number[] {
  try {
    return parsePids(readFileSync(procsFile, 'utf8'));
  } catch {
    return [];
  }
}

/** The PIDs listed in a cgroup.procs file. */
export async function readPids(procsFile: string): Promise<number[]> {
  return parsePids((await readOptional(procsFile)) ?? '');
}

export async function subdirs(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch (e) {
    if (errno(e) === 'ENOENT') return [];
    throw e;
  }
}

// No O_CREAT: a control file the kernel does not provide must fail, not appear as a plain file.
const WRITE_FLAGS = constants.O_WRONLY | constants.O_TRUNC;

/**
 * Control files are written synchronously too, for the same reason: the kernel does the work in
 * memory, while a promise write waits for a thread-pool thread, queued behind a teardown's syncfs
 * or unmount (measured: 5-16 ms for a freeze-kill-thaw on a busy supervisor).
 */
export async function writeControl(path: string, value: string): Promise<void> {
  writeControlSync(path, value);
}

function writeControlSync(path: string, value: string): void {
  const fd = openSync(path, WRITE_FLAGS);
  try {
    writeSync(fd, value);
  } finally {
    closeSync(fd);
  }
}

/**
 * create()'s writes: those due now are made, those left for the hand-over (atDispatch) are
 * returned, each checked to exist first, so that a host without the file is refused before the
 * run starts, as it would be if it were written now.
 */
export async function applyCreateWrites(writes: PlannedWrite[], ops: HostOps): Promise<PlannedWrite[]> {
  const later = writes.filter((w) => w.atDispatch);
  for (const w of later) {
    if (!existsSync(w.path)) throw hostLacks.cgroupFile(w.path, basename(w.path).split('.')[0]!, basename(w.path));
  }
  await applyWrites(writes.filter((w) => !w.atDispatch), ops);
  return later;
}

/** The hand-over's writes (RunCgroup.limitCpu): synchronous, so that nothing runs between them and the request. */
/**
 * The writes that lift a run's CPU quota and disk throttles, for its kill: a killed process still
 * has to run its exit, and one throttled then waits for the group's CPU debt to be paid (a task
 * that overran its quota in kernel memory reclaim: SIGKILL took ~23 s at a 10% quota) or for its
 * queued direct I/O to pass the throttle (8 reads of 30 MB at 10 MB/s: 20 s in D state after the
 * result). Nothing of the task runs again once it is killed, so nothing is given away.
 */
export function releaseWrites(writes: readonly PlannedWrite[]): PlannedWrite[] {
  return writes.flatMap((w): PlannedWrite[] => {
    const file = basename(w.path);
    if (file === 'cpu.cfs_quota_us') return [{ path: w.path, value: '-1' }];
    if (file === 'cpu.max') return [{ path: w.path, value: `max ${w.value.split(' ')[1] ?? ''}`.trim() }];
    if (file.startsWith('blkio.throttle.') && file.endsWith('_device')) return [{ path: w.path, value: `${w.value.split(' ')[0]} 0` }];
    if (file === 'io.max') return [{ path: w.path, value: `${w.value.split(' ')[0]} rbps=max wbps=max riops=max wiops=max` }];
    return [];
  });
}

/**
 * For a kill that waits: every process of the group sent SIGKILL (after the namespace's init
 * alone, the rest may not have been yet), then `release` written, so they run their exits without
 * a quota or throttle. Best effort: a file the kernel refuses (the group going away) leaves that
 * limit as it was.
 */
export async function releaseAfterKill(release: readonly PlannedWrite[], pids: () => Promise<number[]>, ops: HostOps): Promise<void> {
  if (!release.length) return;
  killAll(await pids(), ops);
  for (const w of release) {
    try {
      writeControlSync(w.path, w.value);
    } catch {
      /* the kill goes on */
    }
  }
}

export function applyWritesSync(writes: readonly PlannedWrite[]): void {
  for (const w of writes) {
    try {
      writeControlSync(w.path, w.value);
    } catch (e) {
      throw new PawlError('RuntimeError', `cannot write "${w.value}" to ${w.path}: ${(e as Error).message}`);
    }
  }
}

export async function applyWrites(writes: PlannedWrite[], ops: HostOps): Promise<void> {
  for (const w of writes) {
    try {
      await writeControl(w.path, w.value);
    } catch (e) {
      if (errno(e) !== 'ENOENT') {
        throw new PawlError('RuntimeError', `cannot write "${w.value}" to ${w.path}: ${(e as Error).message}`);
      }
      if (w.ifMissing === 'skip') continue;
      if (w.ifMissing === 'swap') {
        if (!(await ops.swapActive())) continue;
        throw hostLacks.swapAccounting(`${w.path} does not exist`);
      }
      const controller = basename(w.path).split('.')[0];
      throw hostLacks.cgroupFile(w.path, controller!, basename(w.path));
    }
  }
}

/** rmdir that tolerates a directory already gone and retries the EBUSY a cgroup gives for a few ms after its last process exits. */
export async function removeDir(dir: string, ops: HostOps, timeoutMs = 1000): Promise<void> {
  let busy: unknown = null;
  const removed = await pollUntil(async () => {
    try {
      await ops.rmdir(dir);
      return true;
    } catch (e) {
      if (errno(e) === 'ENOENT') return true;
      if (errno(e) !== 'EBUSY') throw new PawlError('RuntimeError', `cannot remove cgroup ${dir}: ${(e as Error).message}`);
      busy = e;
      return false;
    }
  }, timeoutMs, 10);
  if (!removed) throw new PawlError('RuntimeError', `cannot remove cgroup ${dir}: ${(busy as Error).message}`);
}

/**
 * SIGKILL whatever is in the group until it is empty: each round reads the cgroup.procs files (a
 * group already removed counts as empty) and kills what they list. A killed process is gone
 * within milliseconds, so the rounds start 1 ms apart (they were 5 ms: most of a pooled trivial
 * run's reap). While the first file still lists processes, a round reads it alone (every process
 * but a shim killed mid-join is in every hierarchy of v1: six reads a round were most of the
 * wait's CPU); once it reads empty, every file is read, and the group is empty when they all
 * are. Returns what was left when timeoutMs ran out ([] once empty).
 */
export async function killUntilEmpty(procsFiles: readonly string[], ops: HostOps, timeoutMs: number): Promise<number[]> {
  const read = async (files: readonly string[]) => [...new Set((await Promise.all(files.map(readPids))).flat())];
  let left: number[] = [];
  await pollUntil(async () => {
    left = await read(procsFiles.slice(0, 1));
    if (left.length === 0 && procsFiles.length > 1) left = await read(procsFiles);
    killAll(left, ops);
    return left.length === 0;
  }, timeoutMs, soonThenEvery5ms);
  return left;
}

/** Sends SIGKILL to each PID, ignoring those that already exited; never to this process. */
export function killAll(pids: number[], ops: HostOps): void {
  for (const pid of pids) {
    // The supervisor never joins a run group, but if a bug ever put it there it must not kill itself.
    if (!(pid > 0) || pid === process.pid) continue;
    try {
      ops.kill(pid, 'SIGKILL');
    } catch (e) {
      if (errno(e) !== 'ESRCH') throw e;
    }
  }
}
