// Is the supervisor that owns a run still alive? A pid alone cannot say: pids are recycled (an
// orphan would live on under a stranger's pid) and mean nothing in another pid namespace (a live
// supervisor there would look dead and have its runs killed). So each run records its supervisor
// as pid + process start time (/proc/PID/stat field 22) + boot id + pid namespace, and gc judges:
// - another boot: dead (nothing of that boot runs);
// - another pid namespace: unknown, and left alone (gc --force to take it anyway): the pid is
//   not ours to look up, and killing a live supervisor's runs is worse than keeping a leftover;
// - same namespace: alive only if that pid exists with that very start time.
// A host fact, below runtime/ and supervisor/: a backend reaps its init by pid + start time too.
import { readFileSync, readlinkSync } from 'node:fs';

export interface ProcessRecord {
  pid: number;
  /** Clock ticks since boot when the process started (/proc/PID/stat field 22). */
  startTime: number;
  bootId: string;
  /** Inode of /proc/PID/ns/pid. */
  pidNs: string;
}

export type Liveness = 'alive' | 'dead' | 'unknown';

const read = (path: string): string | null => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
};

/** Field 22 of /proc/PID/stat (after the command name, which may hold spaces and parentheses). */
export function processStartTime(pid: number): number | null {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const t = Number(fields[19]); // field 22 is the 20th after state (field 3)
  return Number.isFinite(t) ? t : null;
}

export const bootId = (): string => (read('/proc/sys/kernel/random/boot_id') ?? '').trim();

const pidNsOf = (pid: number | 'self'): string | null => {
  try {
    return /\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/pid`))?.[1] ?? null;
  } catch {
    return null;
  }
};

let self: ProcessRecord | null = null;
/** This process, as a run records its supervisor. */
export function selfRecord(): ProcessRecord {
  self ??= { pid: process.pid, startTime: processStartTime(process.pid) ?? -1, bootId: bootId(), pidNs: pidNsOf('self') ?? '' };
  return self;
}

export function judge(r: ProcessRecord): Liveness {
  const me = selfRecord();
  if (r.bootId !== me.bootId) return 'dead';
  if (r.pidNs !== me.pidNs) return 'unknown';
  if (r.pid === me.pid) return r.startTime === me.startTime ? 'alive' : 'dead';
  const t = processStartTime(r.pid);
  return t !== null && t === r.startTime ? 'alive' : 'dead';
}

const CLK_TCK = 100; // USER_HZ: what /proc reports in, on every Linux architecture pawl supports
let btimeMs: number | null = null;
function bootTimeMs(): number {
  btimeMs ??= Number(/^btime (\d+)/m.exec(read('/proc/stat') ?? '')?.[1] ?? 0) * 1000;
  return btimeMs;
}

/**
 * For a run known only by name (its pid and creation time, runtime/ids.ts): a process with
 * that pid that started after the run was made is a stranger, so the owner is dead. Runs made
 * before this boot are dead too. (A name cannot tell another pid namespace: runs with a record
 * are judged by judge() instead.)
 */
export function judgeByName(pid: number, createdMs: number): Liveness {
  if (createdMs < bootTimeMs()) return 'dead';
  const t = processStartTime(pid);
  if (t === null) return 'dead';
  const startedMs = bootTimeMs() + (t * 1000) / CLK_TCK;
  // btime has a second's resolution: a start within 2 s after the run's creation is no proof.
  return startedMs > createdMs + 2000 ? 'dead' : 'alive';
}
