// Watch a running sandbox: poll cgroup stats for peaks and end the run when a limit the kernel
// does not enforce by itself is crossed (CPU time, disk space, a refused fork). The wall-clock
// limit is a plain timer.
//
// The polls thin out as a run ages (pollCadence): every pollIntervalMs (100 ms) for its first
// moments, then a quarter of its age apart, up to pollMaxIntervalMs (500 ms). Short runs, most
// of them, are sampled as densely as before; a long quiet one wakes the supervisor a few times a
// second instead of ten (each wake-up costs CPU, most of what monitoring costs). The gaps never
// let the CPU-time limit slip further than before: a gap is at most the time the run needs to
// use up what is left of it on every CPU of the host, so its last stretch is polled densely.
import { readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import type { Policy } from '../config/policy.js';
import type { CgroupStats, RunCgroup } from '../cgroup/types.js';
import type { KillReason } from './classify.js';
import { readPidsSync } from '../cgroup/files.js';
import { treeUsage } from './scratch.js';
import { workspaceFs } from './workspace-fs.js';

export interface Peaks {
  memoryBytes: number;
  pids: number;
  fds: number;
  workspaceBytes: number;
  /** /workspace's own filesystem was seen out of space or inodes (statfs) at some poll. */
  workspaceFull: boolean;
}

/** At most this long between two looks at /workspace's usage (a statfs; without root, du: a process) and the open fds. */
const DISK_EVERY_MS = 500;
/**
 * The most CPUs a run can use at once (its quota, if any, is lower): what bounds a gap between
 * polls. Every online CPU, not the supervisor's affinity (availableParallelism): a task may widen
 * its own. Counted once, on first use.
 */
let hostCpus = 0;
const onlineCpus = () => (hostCpus ||= Math.max(1, cpus().length));

/**
 * The gap before the next poll, `age` ms into the run's watch (since its task was handed over, in
 * a pool) with `cpuLeftMs` of its CPU time left: a quarter of its age, between `baseMs` and
 * `maxMs`, and no longer than the whole host's CPUs take to use up what is left.
 */
export function pollCadence(ageMs: number, cpuLeftMs: number, baseMs: number, maxMs: number): number {
  const gap = Math.min(Math.max(maxMs, baseMs), ageMs / 4, cpuLeftMs / onlineCpus());
  return Math.max(baseMs, Math.round(gap));
}

export class Watch {
  readonly peaks: Peaks = { memoryBytes: 0, pids: 0, fds: 0, workspaceBytes: 0, workspaceFull: false };
  last: CgroupStats | null = null;
  private timer: NodeJS.Timeout | null = null;
  private poller: NodeJS.Timeout | null = null;
  private polling = false;
  private inflight: Promise<void> = Promise.resolve();
  /** When the polls' cadence began (start, or the hand-over's startClock); null when stopped. */
  private since: number | null = null;
  private baseMs = 100;
  private maxMs = 500;
  /** The gap before the poll in progress (the next is about as far). */
  private gap = 100;
  private lastDisk = -Infinity;

  constructor(
    private readonly cgroup: RunCgroup,
    private readonly policy: Policy,
    private readonly workspace: string,
    private readonly kill: (reason: KillReason) => void,
  ) {}

  /**
   * Polls from now, `baseMs` apart at first and at most `maxMs` apart later (pollCadence); the
   * wall clock too unless `clock: false` (a pooled sandbox starts it at send).
   */
  start(baseMs: number, maxMs: number, opts: { clock?: boolean } = {}): void {
    // A host object made by hand may lack them (hostConfig() fills both): never a busy poll.
    this.baseMs = Number.isFinite(baseMs) && baseMs >= 10 ? baseMs : 100;
    this.maxMs = Number.isFinite(maxMs) ? maxMs : this.baseMs;
    if (opts.clock !== false) this.startClock();
    this.since = performance.now();
    this.schedule(this.baseMs);
  }

  /** The wall clock from now; the polls' cadence starts afresh (a pooled sandbox waited idle, thinly polled). */
  startClock(): void {
    this.timer ??= setTimeout(() => this.kill('wall'), this.policy.resources.wallTime);
    if (this.since !== null) {
      this.since = performance.now();
      this.schedule(this.baseMs);
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.poller) clearTimeout(this.poller);
    this.timer = this.poller = null;
    this.since = null;
  }

  private schedule(ms: number): void {
    if (this.poller) clearTimeout(this.poller);
    this.gap = ms;
    this.poller = setTimeout(() => {
      this.poller = null;
      void this.poll().then(() => {
        if (this.since === null || this.poller) return; // stopped, or rescheduled meanwhile
        const cpuLeft = this.policy.resources.cpuTime - (this.last?.cpuUsageUs ?? 0) / 1000;
        this.schedule(pollCadence(performance.now() - this.since, cpuLeft, this.baseMs, this.maxMs));
      });
    }, ms);
  }

  /**
   * One poll; also called once after the run for the final numbers. A periodic poll skips while
   * another is in flight; the final one waits for it and then reads afresh, since a poll that
   * started before the run ended can miss its last I/O, CPU time or memory peak.
   */
  async poll(final = false): Promise<void> {
    if (this.polling) {
      if (!final) return;
      while (this.polling) await this.inflight;
    }
    this.polling = true;
    const p = this.pollOnce(final);
    this.inflight = p;
    await p;
  }

  private async pollOnce(final: boolean): Promise<void> {
    try {
      // A periodic poll leaves out the I/O counters (nothing is judged on them during the run).
      const s = await this.cgroup.readStats({ io: final });
      this.last = final ? s : { ...s, ioReadBytes: this.last?.ioReadBytes ?? 0, ioWriteBytes: this.last?.ioWriteBytes ?? 0 };
      const r = this.policy.resources;
      this.peaks.memoryBytes = Math.max(this.peaks.memoryBytes, s.memoryPeakBytes, s.memoryCurrentBytes);
      this.peaks.pids = Math.max(this.peaks.pids, s.pidsPeak ?? 0, s.pidsCurrent);
      if (final) return;
      // The OOM killer took a process: the run is over, as v2's memory.oom.group makes it there
      // (v1 has none: the rest of the run went on, its verdict already decided, until its clock).
      if (s.oomKills > 0) return this.kill('memory');
      if (s.cpuUsageUs / 1000 > r.cpuTime) return this.kill('cpu');
      if (s.pidsLimitHits > 0) return this.kill('pids');
      // /workspace's own filesystem: one statfs, and no process (its size is the kernel's to
      // enforce; this sees files unlinked but held open too, which no walk can); the reap reads it
      // once more. A plain dir (no root): du. Either at the first poll, then at most DISK_EVERY_MS apart.
      let used: number | null = null;
      const now = performance.now();
      // Looked at now if the next poll would come later than DISK_EVERY_MS after the last look.
      if (now - this.lastDisk + this.gap > DISK_EVERY_MS) {
        this.lastDisk = now;
        // The fd count is a sampled peak (RLIMIT_NOFILE is the limit): with the disk, not every poll.
        this.peaks.fds = Math.max(this.peaks.fds, this.countFds());
        const fs = await workspaceFs(this.workspace);
        if (fs?.full) this.peaks.workspaceFull = true;
        // On its own filesystem the kernel holds the task to diskSpace (ENOSPC); blocks past it are
        // ext4's own slack in an image sized to give the task all of diskSpace, not a breach to
        // kill for. A full filesystem decides the verdict only if the program gave up (classify).
        used = fs ? Math.min(fs.usedBytes, r.diskSpace) : await treeUsage(this.workspace, { live: true });
      }
      if (used !== null) {
        this.peaks.workspaceBytes = Math.max(this.peaks.workspaceBytes, used);
        if (used > r.diskSpace) return this.kill('disk');
      }
    } catch {
      // The group can vanish between the program's exit and this poll; the final poll decides.
    } finally {
      this.polling = false;
    }
  }

  /** The largest number of open fds of any one process (RLIMIT_NOFILE is per process). */
  private countFds(): number {
    let max = 0;
    // One group's list: every process of the run is in each once its shim has moved (the kill
    // reads them all, RunCgroup.pids). Read synchronously, as the control files are (files.ts).
    for (const pid of readPidsSync(this.cgroup.procsFiles[0]!)) {
      // Synchronous, as the cgroup files are (files.ts): /proc is the kernel's memory, not a disk.
      let fds = 0;
      try {
        fds = readdirSync(`/proc/${pid}/fd`).length;
      } catch {
        /* gone */
      }
      max = Math.max(max, fds);
    }
    return max;
  }
}
