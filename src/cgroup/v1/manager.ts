// The cgroup v1 driver: one directory per run in each hierarchy pawl uses.
import { join } from 'node:path';
import { PawlError } from '../../errors.js';
import { hostLacks } from '../../hostfacts/capabilities.js';
import { applyCreateWrites, applyWritesSync, errno, killAll, killUntilEmpty, releaseAfterKill, releaseWrites, readPids, removeDir, subdirs, type PlannedWrite } from '../files.js';
import { checkName, checkParent, hostOps, type DriverOptions, type HostOps } from '../options.js';
import type { CgroupDriver, CgroupLimits, CgroupStats, KillOptions, RunCgroup } from '../types.js';
import { blkioStats, blkioWrites } from './blkio.js';
import { cpuWrites, cpuacctStats } from './cpu.js';
import { freeze, thaw } from './freezer.js';
import { memoryStats, memoryWrites } from './memory.js';
import { pidsStats, pidsWrites } from './pids.js';

/** Why pawl needs each hierarchy; blkio only when a run asks for I/O limits. */
const NEEDED = {
  memory: 'the memory limit',
  cpu: 'the CPU quota',
  cpuacct: 'CPU usage accounting',
  pids: 'the process limit',
  freezer: 'killing a run without races',
} as const;
type Controller = keyof typeof NEEDED | 'blkio';
const CONTROLLERS: Controller[] = ['memory', 'cpu', 'cpuacct', 'pids', 'blkio', 'freezer'];

export interface V1Options extends DriverOptions {
  /** Controller -> mount point, as probed. Default: `<root>/<controller>` (root default /sys/fs/cgroup). */
  mounts?: Record<string, string>;
}

interface RunPaths {
  memory: string;
  cpu: string;
  cpuacct: string;
  pids: string;
  freezer: string;
  blkio: string | null;
}

const EMPTY_WAIT_MS = 2000;

export class CgroupV1Driver implements CgroupDriver {
  readonly version = 'v1';
  private readonly mounts: Record<string, string>;
  private readonly parent: string;
  private readonly ops: HostOps;

  constructor(opts: V1Options = {}) {
    const root = opts.root ?? '/sys/fs/cgroup';
    // Only the hierarchies pawl uses: a probed host also lists cpuset, devices and others, which
    // pawl must never create groups in.
    const mounts = opts.mounts ?? Object.fromEntries(CONTROLLERS.map((c) => [c, join(root, c)]));
    this.mounts = Object.fromEntries(CONTROLLERS.filter((c) => mounts[c]).map((c) => [c, mounts[c]!]));
    this.parent = checkParent(opts.parent ?? 'pawl');
    this.ops = { ...hostOps, ...opts.ops };
    for (const [c, why] of Object.entries(NEEDED)) {
      if (!this.mounts[c]) throw hostLacks.cgroupController('v1', c, why);
    }
  }

  plan(name: string, limits: CgroupLimits): PlannedWrite[] {
    const p = this.paths(name);
    if (limits.io && !p.blkio) {
      throw hostLacks.cgroupController('v1', 'blkio', 'disk I/O limits');
    }
    return [
      ...memoryWrites(p.memory, limits),
      ...cpuWrites(p.cpu, limits),
      ...pidsWrites(p.pids, limits),
      ...(limits.io && p.blkio ? blkioWrites(p.blkio, limits.io) : []),
    ];
  }

  async create(name: string, limits: CgroupLimits): Promise<RunCgroup> {
    const writes = this.plan(name, limits);
    const run = new V1RunCgroup(name, this.paths(name), this.ops);
    await this.ensureParents();
    const made: string[] = [];
    try {
      for (const dir of run.dirs) {
        const unique = (e: unknown) => {
          throw errno(e) === 'EEXIST' ? new PawlError('RuntimeError', `cgroup ${dir} already exists: run names must be unique`) : e;
        };
        await this.ops.mkdir(dir).catch(async (e: unknown) => {
          if (errno(e) !== 'ENOENT') unique(e);
          // The parent went since this driver made it (removed by hand, or a host's clean-up): again.
          this.parentsMade = false;
          await this.ensureParents();
          await this.ops.mkdir(dir).catch(unique);
        });
        made.push(dir);
      }
      run.release = releaseWrites(writes);
      run.atDispatch = await applyCreateWrites(writes, this.ops);
    } catch (e) {
      await Promise.allSettled(made.map((d) => removeDir(d, this.ops)));
      throw e;
    }
    return run;
  }

  async list(): Promise<string[]> {
    return subdirs(join(this.mounts.memory!, this.parent));
  }

  open(name: string): RunCgroup {
    return new V1RunCgroup(name, this.paths(name), this.ops);
  }

  private paths(name: string): RunPaths {
    checkName(name);
    const at = (c: Controller) => join(this.mounts[c]!, this.parent, name);
    return {
      memory: at('memory'),
      cpu: at('cpu'),
      cpuacct: at('cpuacct'),
      pids: at('pids'),
      freezer: at('freezer'),
      blkio: this.mounts.blkio ? at('blkio') : null,
    };
  }

  /** Made (or found) once per driver: six mkdirs failing with EEXIST on every run cost ~0.6 ms of supervisor CPU. */
  private parentsMade = false;

  private async ensureParents(): Promise<void> {
    if (this.parentsMade) return;
    const components = this.parent.split('/');
    for (const mount of new Set(Object.values(this.mounts))) {
      let dir = mount;
      for (const c of components) {
        dir = join(dir, c);
        await this.ops.mkdir(dir).catch((e: unknown) => {
          const code = errno(e);
          if (code === 'EEXIST') return;
          if ((code === 'EACCES' || code === 'EPERM') && process.geteuid?.() !== 0) {
            throw new PawlError('HostUnsupported', `cgroup v1 needs root: pawl (uid ${process.geteuid?.()}) cannot create ${dir} (${code}); v1 has no safe delegation (run as root, or on a cgroup v2 host with a delegated subtree: README "Hosts")`);
          }
          throw e;
        });
      }
    }
    this.parentsMade = true;
  }
}

class V1RunCgroup implements RunCgroup {
  readonly version = 'v1';
  readonly dirs: string[];
  readonly procsFiles: string[];
  /** What create() left for the hand-over (limitCpu). */
  atDispatch: PlannedWrite[] = [];
  /** What lifts the CPU quota and disk throttles for the kill (files.ts releaseWrites). */
  release: PlannedWrite[] = [];

  constructor(
    readonly name: string,
    private readonly p: RunPaths,
    private readonly ops: HostOps,
  ) {
    // cpu and cpuacct share one directory where they are co-mounted ("cpu,cpuacct").
    this.dirs = [...new Set([p.memory, p.cpu, p.cpuacct, p.pids, p.blkio, p.freezer].filter((d): d is string => d !== null))];
    this.procsFiles = this.dirs.map((d) => join(d, 'cgroup.procs'));
  }

  async readStats(opts: { io?: boolean } = {}): Promise<CgroupStats> {
    const [memory, cpu, pids, io] = await Promise.all([
      memoryStats(this.p.memory),
      cpuacctStats(this.p.cpuacct),
      pidsStats(this.p.pids),
      this.p.blkio && opts.io !== false ? blkioStats(this.p.blkio) : { ioReadBytes: 0, ioWriteBytes: 0 },
    ]);
    return { ...memory, ...cpu, ...pids, ...io };
  }

  /** Every hierarchy counts: a process killed while its shim was joining them may sit in only some. */
  async pids(): Promise<number[]> {
    const lists = await Promise.all(this.procsFiles.map(readPids));
    return [...new Set(lists.flat())].sort((a, b) => a - b);
  }

  limitCpu(): void {
    applyWritesSync(this.atDispatch);
    this.atDispatch = [];
  }

  async kill(opts: KillOptions = {}): Promise<void> {
    // The freezer only when the run's namespace could not be killed at once: its two writes cost
    // 5-6 ms of kernel time each on these hosts (measured: the largest part of a pooled run's
    // supervisor CPU, and of its reap).
    if (!opts.firstKill?.()) {
      await freeze(this.p.freezer);
      try {
        killAll(await this.pids(), this.ops);
      } finally {
        await thaw(this.p.freezer);
      }
    } else if (opts.wait === false) {
      // The namespace's other processes die once its init has: signalled here at once as well.
      // One hierarchy's list holds them all (every process joined them all long before: only a
      // shim killed mid-join sits in some), ~1 ms less than six at a pooled run's reply; the
      // kill that waits reads every hierarchy until all are empty.
      killAll(await readPids(join(this.p.pids, 'cgroup.procs')), this.ops);
    }
    if (opts.wait === false) return;
    await releaseAfterKill(this.release, () => this.pids(), this.ops);
    this.release = [];
    const left = await killUntilEmpty(this.procsFiles, this.ops, EMPTY_WAIT_MS);
    if (left.length) {
      throw new PawlError('RuntimeError', `cgroup run ${this.name} still has processes ${left.join(', ')} ${EMPTY_WAIT_MS} ms after SIGKILL`);
    }
  }

  async remove(): Promise<void> {
    await Promise.all(this.dirs.map((d) => removeDir(d, this.ops)));
  }
}
