// The cgroup v2 driver: one directory per run under <root>/<parent>.
import { join } from 'node:path';
import { PawlError } from '../../errors.js';
import {
  applyWrites, errno, exists, killAll, readOptional, readPids, removeDir, subdirs, waitFor, writeControl, type PlannedWrite,
} from '../files.js';
import { checkName, checkParent, hostOps, type DriverOptions, type HostOps } from '../options.js';
import type { CgroupDriver, CgroupLimits, CgroupStats, RunCgroup } from '../types.js';
import { cpuStats, cpuWrites } from './cpu.js';
import { freeze, thaw } from './freezer.js';
import { ioStats, ioWrites } from './io.js';
import { memoryStats, memoryWrites } from './memory.js';
import { pidsStats, pidsWrites } from './pids.js';

const NEEDED = {
  memory: 'the memory limit',
  cpu: 'the CPU quota',
  pids: 'the process limit',
  io: 'disk I/O limits',
} as const;
type Controller = keyof typeof NEEDED;

const EMPTY_WAIT_MS = 2000;

function words(text: string | null): string[] {
  return (text ?? '').trim().split(/\s+/).filter(Boolean);
}

export class CgroupV2Driver implements CgroupDriver {
  readonly version = 'v2';
  private readonly root: string;
  private readonly parent: string;
  private readonly ops: HostOps;

  constructor(opts: DriverOptions = {}) {
    this.root = opts.root ?? '/sys/fs/cgroup';
    this.parent = checkParent(opts.parent ?? 'pawl');
    this.ops = { ...hostOps, ...opts.ops };
  }

  plan(name: string, limits: CgroupLimits): PlannedWrite[] {
    const dir = this.dir(name);
    return [
      ...memoryWrites(dir, limits),
      ...cpuWrites(dir, limits),
      ...pidsWrites(dir, limits),
      ...(limits.io ? ioWrites(dir, limits.io) : []),
    ];
  }

  async create(name: string, limits: CgroupLimits): Promise<RunCgroup> {
    const writes = this.plan(name, limits);
    const needed: Controller[] = limits.io ? ['memory', 'cpu', 'pids', 'io'] : ['memory', 'cpu', 'pids'];
    await this.delegate(needed);
    const run = this.open(name);
    const dir = run.dirs[0]!;
    await this.ops.mkdir(dir).catch((e: unknown) => {
      throw errno(e) === 'EEXIST' ? new PawlError('RuntimeError', `cgroup ${dir} already exists: run names must be unique`) : e;
    });
    try {
      await applyWrites(writes, this.ops);
    } catch (e) {
      await removeDir(dir, this.ops).catch(() => undefined);
      throw e;
    }
    return run;
  }

  async list(): Promise<string[]> {
    return subdirs(join(this.root, this.parent));
  }

  open(name: string): RunCgroup {
    return new V2RunCgroup(name, this.dir(name), this.ops);
  }

  private dir(name: string): string {
    return join(this.root, this.parent, checkName(name));
  }

  /**
   * A controller reaches a run only when every ancestor below the root lists it in
   * cgroup.subtree_control; only the missing ones are written, so a host already set up is
   * left as it is.
   */
  private async delegate(needed: Controller[]): Promise<void> {
    const available = words(await readOptional(join(this.root, 'cgroup.controllers')));
    for (const c of needed) {
      if (!available.includes(c)) {
        throw new PawlError(
          'HostUnsupported',
          `the cgroup v2 "${c}" controller is not available in ${this.root}/cgroup.controllers (bound to a v1 hierarchy, not built in, or not delegated); pawl needs it for ${NEEDED[c]}`,
        );
      }
    }
    let dir = this.root;
    for (const component of ['', ...this.parent.split('/')]) {
      if (component) {
        dir = join(dir, component);
        await this.ops.mkdir(dir).catch((e: unknown) => {
          if (errno(e) !== 'EEXIST') throw e;
        });
      }
      const file = join(dir, 'cgroup.subtree_control');
      const enabled = words(await readOptional(file));
      const missing = needed.filter((c) => !enabled.includes(c));
      if (missing.length === 0) continue;
      try {
        await writeControl(file, missing.map((c) => `+${c}`).join(' '));
      } catch (e) {
        // EBUSY here is the "no internal processes" rule: a non-root cgroup holding processes
        // cannot hand controllers to children.
        throw new PawlError('HostUnsupported', `cannot enable ${missing.join(', ')} in ${file}: ${(e as Error).message}`);
      }
    }
  }
}

class V2RunCgroup implements RunCgroup {
  readonly version = 'v2';
  readonly dirs: string[];
  readonly procsFiles: string[];

  constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly ops: HostOps,
  ) {
    this.dirs = [dir];
    this.procsFiles = [join(dir, 'cgroup.procs')];
  }

  async readStats(): Promise<CgroupStats> {
    const [memory, cpu, pids, io] = await Promise.all([memoryStats(this.dir), cpuStats(this.dir), pidsStats(this.dir), ioStats(this.dir)]);
    return { ...memory, ...cpu, ...pids, ...io };
  }

  pids(): Promise<number[]> {
    return readPids(this.procsFiles[0]!);
  }

  async kill(): Promise<void> {
    const killFile = join(this.dir, 'cgroup.kill');
    // cgroup.kill (Linux 5.14) kills the whole group atomically, forks in flight included.
    if (await exists(killFile)) {
      await writeControl(killFile, '1');
    } else {
      await freeze(this.dir);
      try {
        killAll(await this.pids(), this.ops);
      } finally {
        await thaw(this.dir);
      }
    }
    let left: number[] = [];
    const empty = await waitFor(async () => {
      left = await this.pids();
      killAll(left, this.ops);
      return left.length === 0;
    }, EMPTY_WAIT_MS);
    if (!empty) {
      throw new PawlError('RuntimeError', `cgroup run ${this.name} still has processes ${left.join(', ')} ${EMPTY_WAIT_MS} ms after SIGKILL`);
    }
  }

  async remove(): Promise<void> {
    await removeDir(this.dir, this.ops);
  }
}
