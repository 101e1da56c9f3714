// One small interface over cgroup v1 and v2 (youki's libcgroups shape): create a per-run group
// with its limits, say where the shim must write its PID, read stats, kill, remove.
import { z } from 'zod';

/** The cgroup version a host runs (a hybrid host with v1 memory counts as v1: probe.ts). */
export const CgroupVersion = z.enum(['v1', 'v2']);
export type CgroupVersion = z.infer<typeof CgroupVersion>;

export interface HostCgroups {
  /** v2 only when cgroup2 owns the memory controller; a hybrid host (v1 memory) is v1. */
  version: CgroupVersion;
  /** Mount point per controller: the v1 hierarchies (cpu and cpuacct may share one), or the cgroup2 mount for every controller in its root's cgroup.controllers. */
  mounts: Record<string, string>;
  /** The cgroup2 mount point, if any (hybrid hosts have one too). */
  unified: string | null;
}

export interface IoLimit {
  /** "MAJ:MIN" of every whole disk (not a partition) behind the rootfs, /workspace and the binds (io-devices.ts). */
  devices: string[];
  readBps: number;
  writeBps: number;
}

/** What the kernel is asked to enforce. Pure data, computed from the policy by limits.ts. */
export interface CgroupLimits {
  memoryBytes: number;
  /** memory+swap limit is set to memoryBytes, i.e. no swap. */
  noSwap: boolean;
  cpuQuotaUs: number;
  cpuPeriodUs: number;
  /** Tasks (threads included), as the pids controller counts them. */
  pidsMax: number;
  io: IoLimit | null;
  /**
   * A task run: the CPU quota is written when the task is handed to the harness (RunCgroup.limitCpu),
   * not at create. Until then the group runs only pawl's own code (node and the harness booting,
   * then waiting on its pipe), which at a 50 % quota took twice its CPU time in wall time. A
   * program run (exec) runs untrusted code from its first instruction: quota at create.
   */
  cpuAtDispatch: boolean;
}

export interface CgroupStats {
  memoryCurrentBytes: number;
  /** Peak since creation (v2 memory.peak, v1 memory.max_usage_in_bytes). */
  memoryPeakBytes: number;
  /** Times the OOM killer killed a process of this group. */
  oomKills: number;
  cpuUsageUs: number;
  pidsCurrent: number;
  /** v2 pids.peak; v1 has none (the monitor keeps the polled maximum). */
  pidsPeak: number | null;
  /** Times a fork/clone was refused by pids.max (pids.events "max"). */
  pidsLimitHits: number;
  ioReadBytes: number;
  ioWriteBytes: number;
}

/** A file the driver writes: shown by `pawl explain`, written by create(). */
export interface CgroupFileWrite {
  path: string;
  value: string;
  /** Written when the task is handed over (RunCgroup.limitCpu), not at create: CgroupLimits.cpuAtDispatch. */
  atDispatch?: true;
}

export interface KillOptions {
  /**
   * Kills, at once, every process of the group that could fork (the run's pid-namespace init:
   * the kernel kills the whole namespace with it, forks in flight included); true when it did.
   * Then no freeze is needed: what is left outside the namespace is the runtime's own process.
   */
  firstKill?: () => boolean;
  /**
   * false: return once every process of the group has been sent SIGKILL, without waiting for the
   * group to empty (a killed process runs no more code, but a node takes ~10 ms to die here, its
   * address space torn down). The caller owns the wait: a kill() that waits, later (the teardown).
   */
  wait?: boolean;
}

export interface RunCgroup {
  readonly version: CgroupVersion;
  readonly name: string;
  /** Every cgroup.procs the sandbox's first process must write its own PID into before exec. */
  readonly procsFiles: string[];
  /** The directories this run owns (one per v1 hierarchy, one on v2). */
  readonly dirs: string[];
  /** `io: false`: without the I/O counters (0), which only the run's final figures need: a file less per poll. */
  readStats(opts?: { io?: boolean }): Promise<CgroupStats>;
  /** PIDs (host view) of every process in the group. */
  pids(): Promise<number[]>;
  /**
   * Write what create() left for the hand-over (cpuAtDispatch: the CPU quota), at once (no await
   * between it and the request that follows); throws when the kernel refuses. Nothing left: no-op.
   */
  limitCpu(): void;
  /** Kill every process in the group and wait until it is empty (v2 cgroup.kill; v1 freeze+SIGKILL). */
  kill(opts?: KillOptions): Promise<void>;
  /** rmdir every directory, retrying EBUSY briefly. Idempotent. */
  remove(): Promise<void>;
}

export interface CgroupDriver {
  readonly version: CgroupVersion;
  /** The writes create() would make, for `pawl explain` (pure). */
  plan(name: string, limits: CgroupLimits): CgroupFileWrite[];
  create(name: string, limits: CgroupLimits): Promise<RunCgroup>;
  /** Names of run groups under pawl's subtree (for gc and leak checks). */
  list(): Promise<string[]>;
  /** Open an existing run group by name (gc). */
  open(name: string): RunCgroup;
}
