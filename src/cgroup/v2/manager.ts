// The cgroup v2 driver: one directory per run under <root>/<parent>.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PawlError } from '../../errors.js';
import {
  applyCreateWrites, applyWritesSync, errno, exists, killAll, killUntilEmpty, releaseAfterKill, releaseWrites, readOptional, readPids, removeDir, subdirs, writeControl, type PlannedWrite,
} from '../files.js';
import { checkName, checkParent, hostOps, type DriverOptions, type HostOps } from '../options.js';
import type { CgroupDriver, CgroupLimits, CgroupStats, KillOptions, RunCgroup } from '../types.js';
import { cpuStats, cpuWrites } from './cpu.js';
import { ownCgroupPath } from '../../config/cgroup-parent.js';
import { commonAncestor } from './delegation.js';
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
  private placementChecked = false;

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
    const run = new V2RunCgroup(name, this.dir(name), this.ops);
    const dir = run.dirs[0]!;
    await this.makeDir(dir, false);
    try {
      run.release = releaseWrites(writes);
      run.atDispatch = await applyCreateWrites(writes, this.ops);
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
   * cgroup.subtree_control; only the missing ones are written, so a host (or a delegated
   * subtree) already set up is left as it is. Every refusal names the file and the reason.
   */
  private async delegate(needed: Controller[]): Promise<void> {
    let dir = this.root;
    const components = this.parent.split('/');
    for (let i = 0; i <= components.length; i++) {
      if (i > 0) {
        dir = join(dir, components[i - 1]!);
        await this.makeDir(dir, true);
      }
      const file = join(dir, 'cgroup.subtree_control');
      const enabled = words(await readOptional(file));
      const missing = needed.filter((c) => !enabled.includes(c));
      if (missing.length === 0) continue;
      if (i === 0) {
        const available = words(await readOptional(join(dir, 'cgroup.controllers')));
        for (const c of missing) {
          if (!available.includes(c)) {
            throw new PawlError(
              'HostUnsupported',
              `the cgroup v2 "${c}" controller is not available in ${dir}/cgroup.controllers (bound to a v1 hierarchy, not built in, or not delegated); pawl needs it for ${NEEDED[c]}`,
            );
          }
        }
      }
      try {
        await writeControl(file, missing.map((c) => `+${c}`).join(' '));
      } catch (e) {
        const code = errno(e);
        if (code === 'EACCES' || code === 'EPERM') {
          throw new PawlError(
            'HostUnsupported',
            `cannot enable ${missing.join(', ')} in ${file}: ${whoAmI()} may not write it (${code}); ${NOT_DELEGATED}, or have the file's owner enable ${missing.map((c) => `+${c}`).join(' ')} there`,
          );
        }
        if (code === 'EBUSY') {
          // The "no internal processes" rule: a non-root cgroup holding processes cannot hand
          // controllers to children.
          throw new PawlError(
            'HostUnsupported',
            `cannot enable ${missing.join(', ')} in ${file}: ${dir} holds processes (cgroup v2 "no internal processes" rule); move them, the supervisor included, into a leaf cgroup such as ${join(dir, 'supervisor')}`,
          );
        }
        if (code === 'ENOENT') {
          // The kernel's answer for a controller missing from this level's cgroup.controllers.
          throw new PawlError(
            'HostUnsupported',
            `cannot enable ${missing.join(', ')} in ${file}: not all of them are in ${join(dir, 'cgroup.controllers')} (${join(dirname(dir), 'cgroup.subtree_control')} does not hand them down); pawl needs ${missing.map((c) => NEEDED[c]).join(', ')}`,
          );
        }
        throw new PawlError('HostUnsupported', `cannot enable ${missing.join(', ')} in ${file}: ${(e as Error).message}`);
      }
    }
    if (!this.placementChecked) {
      await this.checkPlacement();
      this.placementChecked = true;
    }
  }

  /** mkdir with a refusal that says what is missing when the directory is not ours to write. */
  private async makeDir(dir: string, existingOk: boolean): Promise<void> {
    try {
      await this.ops.mkdir(dir);
    } catch (e) {
      const code = errno(e);
      if (code === 'EEXIST') {
        if (existingOk) return;
        throw new PawlError('RuntimeError', `cgroup ${dir} already exists: run names must be unique`);
      }
      if (code === 'EACCES' || code === 'EPERM') {
        throw new PawlError('HostUnsupported', `cannot create cgroup ${dir}: ${whoAmI()} has no write access to ${dirname(dir)} (${code}); ${NOT_DELEGATED}`);
      }
      throw e;
    }
  }

  /**
   * Not root: the shim moves itself from the supervisor's cgroup into the run's, which the kernel
   * allows only with write access to the common ancestor's cgroup.procs. Checked up front, so a
   * supervisor outside its delegated subtree is refused with the reason rather than every run
   * failing in the shim.
   */
  private async checkPlacement(): Promise<void> {
    if (process.geteuid?.() === 0) return;
    const own = ownCgroupPath((await readOptional('/proc/self/cgroup')) ?? '');
    if (own === null) return;
    const ancestor = join(this.root, commonAncestor(own, this.parent), 'cgroup.procs');
    try {
      await access(ancestor, constants.W_OK);
    } catch (e) {
      const code = errno(e);
      if (code !== 'EACCES' && code !== 'EPERM') return;
      throw new PawlError(
        'HostUnsupported',
        `sandboxes cannot be placed in ${join(this.root, this.parent)}: moving a process there from this supervisor's cgroup ${own} needs write access to ${ancestor} (their common ancestor), which ${whoAmI()} lacks; run the supervisor inside the delegated subtree, in a leaf beside pawl's (e.g. <delegated>/supervisor)`,
      );
    }
  }
}

const NOT_DELEGATED =
  'without root, pawl needs a cgroup v2 subtree delegated to its user (what systemd\'s Delegate=yes gives: the directory and its cgroup.procs, cgroup.subtree_control and cgroup.threads owned by the user) and cgroupParent (PAWL_CGROUP_PARENT) inside it';

function whoAmI(): string {
  return `uid ${process.geteuid?.() ?? '?'}`;
}

class V2RunCgroup implements RunCgroup {
  readonly version = 'v2';
  readonly dirs: string[];
  readonly procsFiles: string[];
  /** What create() left for the hand-over (limitCpu). */
  atDispatch: PlannedWrite[] = [];
  /** What lifts the CPU quota and disk throttles for the kill (files.ts releaseWrites). */
  release: PlannedWrite[] = [];

  constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly ops: HostOps,
  ) {
    this.dirs = [dir];
    this.procsFiles = [join(dir, 'cgroup.procs')];
  }

  async readStats(opts: { io?: boolean } = {}): Promise<CgroupStats> {
    const [memory, cpu, pids, io] = await Promise.all([memoryStats(this.dir), cpuStats(this.dir), pidsStats(this.dir), opts.io !== false ? ioStats(this.dir) : { ioReadBytes: 0, ioWriteBytes: 0 }]);
    return { ...memory, ...cpu, ...pids, ...io };
  }

  pids(): Promise<number[]> {
    return readPids(this.procsFiles[0]!);
  }

  limitCpu(): void {
    applyWritesSync(this.atDispatch);
    this.atDispatch = [];
  }

  async kill(opts: KillOptions = {}): Promise<void> {
    const killFile = join(this.dir, 'cgroup.kill');
    // cgroup.kill (Linux 5.14) kills the whole group atomically, forks in flight included.
    if (await exists(killFile)) {
      await writeControl(killFile, '1');
    } else if (!opts.firstKill?.()) {
      await freeze(this.dir);
      try {
        killAll(await this.pids(), this.ops);
      } finally {
        await thaw(this.dir);
      }
    } else if (opts.wait === false) {
      // The namespace's other processes die once its init has: signalled here at once as well.
      killAll(await this.pids(), this.ops);
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
    await removeDir(this.dir, this.ops);
  }
}
