// Was a run killed by its seccomp filter, and for which system call? The exit says whether
// (SIGSYS, or 159 = 128+31 when bwrap's pid 1 reports its child's death as a status); the
// kernel's audit record says which call. The kernel prints that record (type=1326, with pid,
// audit session and syscall number) to its log when no audit daemon takes it; pawl reads
// /dev/kmsg when it may, and the same records from the audit netlink socket when it can join its
// log group (audit-netlink.ts), which the kernel's print rate limit does not thin out. Without a record whose pid or session belongs to the run, the call
// is unknown and reported as null, never guessed.
import { closeSync, openSync, readFileSync, readSync, constants as fsc } from 'node:fs';
import { closeAuditNetlink, drainAuditNetlink, openAuditNetlink, requestAuditStatus, statusReply } from './audit-netlink.js';
import { libseccomp } from './libseccomp.js';
import { loadLibc } from '../util/libc.js';
import { syscallName } from './syscalls.js';

const SIGSYS = 31;

/** How to recognise the run's processes in the audit records. */
export interface AuditKey {
  /**
   * The run's audit session: a launcher that writes to /proc/self/loginuid (root only) before
   * exec gets a fresh session id, inherited by everything in the sandbox. Exact.
   */
  session?: number;
  /** Host pids of the run's processes, when known (e.g. the program started as pid 1). */
  pids?: readonly number[];
  /**
   * When the run's first process was made (ms since the epoch): a record stamped earlier is
   * another process's, even with the same pid (pids are reused: 32768 of them by default).
   */
  since?: number;
}

export interface AuditRecord {
  /** The kernel's stamp (ms since the epoch), from audit(SECONDS.MS:SERIAL). */
  time: number;
  session: number | null;
  pid: number;
  signal: number;
  /** AUDIT_ARCH_* value, which is also libseccomp's architecture token. */
  arch: number;
  syscall: number;
}

// The kernel's line (audit_seccomp): auid uid gid ses [subj (an LSM's)] pid, then comm= and exe=,
// the task's own text (its process name, its program's path: `process.title = "sig=0"` once hid a
// kill from a parse that took the first sig=), then sig arch syscall compat ip code. So the
// fields before comm= are read from the text before it, and the rest from the line's end; and
// only a line that is an audit record from its start counts (the kernel log's own prefix aside).
const HEAD = /^(?:\d+,\d+,\d+,[^;]*;audit: |audit: )?type=1326 audit\((\d+)\.(\d{3}):\d+\): (.*?) comm=/;
const TAIL = / sig=(\d+) arch=([0-9a-f]+) syscall=(\d+) compat=\d+ ip=0x[0-9a-f]+ code=0x[0-9a-f]+\s*$/;
const UNSET = 4294967295;
const STAMP_SLACK_MS = 50;
const AUDIT_ARCH = { x86_64: 0xc000003e, x86: 0x40000003, aarch64: 0xc00000b7, arm: 0x40000028 } as const;
const X32_SYSCALL_BIT = 0x40000000;

export function parseAuditRecord(text: string): AuditRecord | null {
  const line = text.split('\n', 1)[0]!;
  const head = HEAD.exec(line);
  const tail = TAIL.exec(line);
  const ses = head && /(?:^| )ses=(\d+)(?: |$)/.exec(head[3]!);
  const pid = head && / pid=(\d+)$/.exec(head[3]!);
  if (!head || !tail || !ses || !pid) return null;
  const session = Number(ses[1]);
  return { time: Number(head[1]) * 1000 + Number(head[2]), session: session === UNSET ? null : session, pid: Number(pid[1]), signal: Number(tail[1]), arch: parseInt(tail[2]!, 16), syscall: Number(tail[3]) };
}

// One /dev/kmsg reader per process, opened before the first sandbox with a seccomp filter starts
// and moved to the end of the ring buffer then: each read takes only the records printed since
// the last one, kept in a bounded list. (Reading the whole buffer first, a record per read, cost
// a CLI run ~10 ms of its reap here, for records older than any run of the process.) A record
// that arrives both ways (kernel log and netlink) is kept once, by its audit serial.
let kmsg: number | null | undefined;
const seen: AuditRecord[] = [];
const serials = new Set<string>();
const KEEP = 4096;
const SERIAL = /audit\((\d+\.\d+:\d+)\)/;

/**
 * Start listening before a sandbox with a seccomp filter starts: the netlink group delivers only
 * what happens after joining, and the kernel log is read from here on.
 */
export function listenSeccompAudit(): void {
  openAuditNetlink();
  if (kmsg === undefined) kmsg = openKmsg(true);
}

function openKmsg(fromNow: boolean): number | null {
  let fd: number;
  try {
    fd = openSync('/dev/kmsg', fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch {
    return null;
  }
  // Past every record printed so far (SEEK_END); where that fails, they are read once and dropped by time.
  if (fromNow) loadLibc().lseek(fd, 0n, SEEK_END);
  return fd;
}
const SEEK_END = 2;

function keep(line: string): void {
  const rec = parseAuditRecord(line);
  if (!rec) return;
  const serial = SERIAL.exec(line)?.[1];
  if (serial) {
    if (serials.has(serial)) return;
    serials.add(serial);
  }
  seen.push(rec);
}

/** Every seccomp record the kernel has printed or sent (since this process first looked), oldest first; [] when neither can be read. */
export function readSeccompRecords(): AuditRecord[] {
  for (const line of drainAuditNetlink()) keep(line);
  if (kmsg === undefined) kmsg = openKmsg(false);
  if (kmsg !== null) {
    const buf = Buffer.alloc(8192);
    for (;;) {
      let n: number;
      try {
        n = readSync(kmsg, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') continue; // records were overwritten while reading: go on with the next
        break; // EAGAIN: the end of the buffer
      }
      if (n <= 0) break;
      keep(buf.toString('utf8', 0, n));
    }
  }
  if (seen.length > KEEP) seen.splice(0, seen.length - KEEP);
  if (serials.size > 2 * KEEP) serials.clear();
  return seen.slice();
}

/** Event-loop turns awaitAuditDelivery looks for the kernel's answer before it waits 1 ms at a time. */
const AUDIT_SPIN = 20;

/**
 * Wait until the kernel has sent every audit record it had queued when this was called, reading
 * them as they come: its queue (which kauditd empties asynchronously) is seen empty twice in a
 * row. Once a run's processes are all gone, its seccomp records are then all in. false when that
 * cannot be known (no netlink listener, the kernel refused the request, or maxMs passed).
 */
export async function awaitAuditDelivery(maxMs = 3000): Promise<boolean> {
  const end = Date.now() + maxMs;
  for (let empty = 0; empty < 2; ) {
    const n = requestAuditStatus();
    if (n === null) return false;
    let backlog: number | null | undefined;
    for (let turn = 0; ; turn++) {
      readSeccompRecords(); // takes the reply off the socket, with whatever records came first
      if ((backlog = statusReply(n)) !== undefined) break;
      if (Date.now() >= end) return false;
      // The kernel answers within microseconds: the next turns of the event loop first (a 1 ms
      // timer each was ~1 ms of every pooled run's result), then 1 ms apart.
      await new Promise((r) => (turn < AUDIT_SPIN ? setImmediate(r) : setTimeout(r, 1)));
    }
    if (backlog === null) return false;
    empty = backlog === 0 ? empty + 1 : 0;
  }
  readSeccompRecords();
  return true;
}

/** Close the reader (tests). */
export function closeSeccompRecords(): void {
  if (typeof kmsg === 'number') closeSync(kmsg);
  kmsg = undefined;
  seen.length = 0;
  serials.clear();
  closeAuditNetlink();
}

/** The audit session of a live process, or null when it has none. */
export function auditSession(pid: number): number | null {
  try {
    const s = Number(readFileSync(`/proc/${pid}/sessionid`, 'utf8'));
    return Number.isInteger(s) && s !== UNSET ? s : null;
  } catch {
    return null;
  }
}

/** "getpid", or "getpid (x32 ABI)" for a call made through another ABI (the bad-arch kill). */
export function recordSyscallName(r: AuditRecord): string | null {
  if (r.arch === AUDIT_ARCH.x86_64 && r.syscall & X32_SYSCALL_BIT) {
    const name = libseccomp().resolveNum(libseccomp().archToken('x32'), r.syscall);
    return name && `${name} (x32 ABI)`;
  }
  if (r.arch === AUDIT_ARCH.x86_64) return syscallName(r.syscall, 'x86_64');
  if (r.arch === AUDIT_ARCH.aarch64) return syscallName(r.syscall, 'aarch64');
  const abi = r.arch === AUDIT_ARCH.x86 ? 'x86' : r.arch === AUDIT_ARCH.arm ? 'arm' : null;
  const name = abi && libseccomp().resolveNum(r.arch, r.syscall);
  return name ? `${name} (${abi} ABI)` : null;
}

/** The records of the run's processes, by audit session or pid: every seccomp kill, any process. */
export function runRecords(key: AuditKey, records: AuditRecord[]): AuditRecord[] {
  // The kernel's stamp is its coarse clock (up to a tick behind): a little slack before `since`.
  const since = key.since === undefined ? -Infinity : key.since - STAMP_SLACK_MS;
  return records.filter((r) => r.signal === SIGSYS && r.time >= since && ((key.session !== undefined && r.session === key.session) || key.pids?.includes(r.pid)));
}
