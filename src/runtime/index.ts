// The runtime backends behind one interface (types.ts), chosen by policy.runtime / --runtime:
// bubblewrap (default: spawned through the shim, which enters the cgroup itself), runc and crun
// (OCI bundles with create/start; their init joins the same cgroup through linux.cgroupsPath).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cgroupDriver } from '../cgroup/index.js';
import type { CgroupVersion, RunCgroup } from '../cgroup/types.js';
import type { HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { seccompPlan } from '../seccomp/index.js';
import { idTime, ownerPid, partnerId } from '../supervisor/ids.js';
import { shimCommand } from '../supervisor/shim.js';
import { BWRAP, bwrapArgs } from './bwrap/argv.js';
import { spawnWithoutStrayFds } from './fds.js';
import { holdSubreaper, tryReap } from './oci/reaper.js';
import { processStartTime } from '../supervisor/liveness.js';
import type { Readable } from 'node:stream';
import { bundleFiles } from './oci/cli.js';
import { hiddenCgroup2, OciRuntime } from './oci/runtime.js';
import type { ContainerRuntime, CreateOptions, OciRunFacts, RuntimeName, RuntimePlan, RuntimeSandbox, SandboxExit, SandboxInfo } from './types.js';
import { pollUntil, withDeadline } from '../util/wait.js';
import { hostLacks } from '../hostfacts/capabilities.js';

export type * from './types.js';
export { ociConfig, type OciSpec } from './oci/config.js';

const KILL_WAIT_MS = 2000;

class BwrapSandbox implements RuntimeSandbox {
  readonly exited: Promise<SandboxExit>;
  readonly closed: Promise<void>;
  /** bwrap's program is a grandchild in a pid namespace: the audit session identifies it instead. */
  readonly initPid = null;
  /** bwrap has exited and its init is reaped (by bwrap, or by this process once orphaned). */
  private readonly reaped: Promise<void>;

  constructor(readonly child: ChildProcess, private readonly cgroup: RunCgroup, infoFd: number | null) {
    // bwrap exits as soon as its init reports the program's status, often before it has reaped
    // that init: the orphan comes to this process (a child subreaper for the run) and is reaped
    // here, so no bwrap process of the run, zombie or not, outlives the result.
    // (The reaping is part of destroy(), the cleanup: the run's end and wall time are bwrap's exit.)
    const release = holdSubreaper();
    const init = infoFd === null ? Promise.resolve(null) : readInit(child.stdio[infoFd] as Readable | undefined);
    this.exited = new Promise<SandboxExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.reaped = this.exited.then(async () => reapOrphan(await init)).finally(release);
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
  }

  async start(): Promise<void> {
    // bwrap runs from the moment it is spawned (a task's harness waits on fd 3 for its request).
  }

  /**
   * The runtime's init inside the sandbox dies first, which takes its whole pid namespace with it
   * and lets bwrap reap it and exit; killing the whole group at once would orphan that init.
   */
  async kill(): Promise<void> {
    const pid = this.child.pid;
    if (!pid || this.child.exitCode !== null || this.child.signalCode !== null) return;
    let killed = 0;
    for (const member of await this.cgroup.pids().catch(() => [] as number[])) {
      // Only processes of our own group, and only bwrap's direct child (its init).
      if ((await parentPid(member)) !== pid) continue;
      try {
        process.kill(member, 'SIGKILL');
        killed++;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // bwrap reaped it meanwhile
      }
    }
    // Killed right after spawn, before bwrap forked its init: nothing to wait for, the group kill follows.
    if (killed === 0) return;
    // Dying takes a while for a big group held to a small CPU quota.
    await withDeadline(this.exited, KILL_WAIT_MS);
  }

  /** Kill bwrap if it still runs, and wait for it and its init to be reaped. */
  async destroy(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await withDeadline(this.reaped, KILL_WAIT_MS + ORPHAN_WAIT_MS);
  }
}

interface InitProcess {
  pid: number;
  /** Its start time, read while it lived: a recycled pid is never taken for it. */
  startTime: number;
}

/** bwrap's --info-fd report ({"child-pid": N}), read as soon as it is written. */
function readInit(stream: Readable | undefined): Promise<InitProcess | null> {
  if (!stream) return Promise.resolve(null);
  return new Promise((resolve) => {
    let text = '';
    let found: InitProcess | null = null;
    stream.on('data', (b: Buffer) => {
      if (found || text.length > 4096) return;
      text += b.toString('utf8');
      const pid = Number(/"child-pid"\s*:\s*(\d+)/.exec(text)?.[1]);
      const startTime = pid > 0 ? processStartTime(pid) : null;
      if (startTime !== null) found = { pid, startTime };
    });
    stream.once('close', () => resolve(found));
    stream.once('error', () => resolve(found));
  });
}

const ORPHAN_WAIT_MS = 2000;
/** Reap bwrap's init once it is this process's child (it was bwrap's until bwrap exited). */
async function reapOrphan(init: InitProcess | null): Promise<void> {
  if (!init) return;
  await pollUntil(async () => {
    if (processStartTime(init.pid) !== init.startTime) return true; // gone (bwrap reaped it), or the pid is someone else's now
    return (await parentPid(init.pid)) === process.pid && tryReap(init.pid) !== null;
  }, ORPHAN_WAIT_MS, 2);
}

async function parentPid(pid: number): Promise<number | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // The command name (field 2) may hold spaces and parentheses; ppid follows the last ')'.
  const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
  return ppid ? Number(ppid) : null;
}

export const bwrapRuntime: ContainerRuntime = {
  name: 'bwrap',
  assertAvailable(): void {
    if (!existsSync(BWRAP)) throw hostLacks.program('bubblewrap', [BWRAP], 'bubblewrap');
  },
  plan(i): RuntimePlan {
    const runtime = { file: BWRAP, args: bwrapArgs(i.spec) };
    return { runtime, spawn: shimCommand(i.procsFiles, i.rlimits, i.hostId, runtime, i.shimTag), config: null, oci: null, infoFd: i.spec.infoFd ?? null };
  },
  async create(plan: RuntimePlan, opts: CreateOptions): Promise<RuntimeSandbox> {
    const child = spawnWithoutStrayFds(() => spawn(plan.spawn.file, plan.spawn.args, { env: {}, stdio: opts.stdio, detached: false }));
    const sandbox = new BwrapSandbox(child, opts.cgroup, plan.infoFd ?? null);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) => reject(new PawlError('RuntimeError', `cannot start the sandbox: ${e.message}`)));
    });
    return sandbox;
  },
  /** bwrap keeps no state of its own: its runs are the run cgroups without an OCI bundle. */
  async list(host: HostConfig): Promise<SandboxInfo[]> {
    const driver = await cgroupDriver({ parent: host.cgroupParent });
    const now = Date.now();
    const out: SandboxInfo[] = [];
    for (const name of await driver.list()) {
      const id = name.replace(/^run-/, '');
      if (existsSync(bundleFiles(join(host.runDir, id)).config)) continue;
      const busy = (await driver.open(name).pids().catch(() => [])).length > 0;
      out.push({ id, runtime: 'bwrap', state: busy ? 'running' : 'stopped', ageMs: now - idTime(id), owner: ownerPid(id), pid: null });
    }
    return out;
  },
  /** Nothing of bwrap's own to remove: gc removes the run's cgroup and scratch dir for every backend. */
  async remove(): Promise<void> {},
};

const runc = new OciRuntime('runc');
const crun = new OciRuntime('crun');
const RUNTIMES: Record<RuntimeName, ContainerRuntime> = { bwrap: bwrapRuntime, runc, crun };

export function runtimeFor(name: RuntimeName): ContainerRuntime {
  return RUNTIMES[name];
}

/** The OCI backends, which keep container state pawl must clean up. */
export const ociRuntimes = (): ContainerRuntime[] => [runc, crun];

/** Every sandbox pawl owns under this host config, whatever its backend. */
export async function listSandboxes(host: HostConfig): Promise<SandboxInfo[]> {
  const lists = await Promise.all(Object.values(RUNTIMES).map((r) => r.list(host)));
  return lists.flat().sort((a, b) => b.ageMs - a.ageMs);
}

let usernsAllowed: boolean | undefined;
/** Whether this host lets pawl create user namespaces (user.max_user_namespaces > 0). */
function userns(): boolean {
  if (usernsAllowed === undefined) {
    const max = existsSync('/proc/self/ns/user') ? readFileSync('/proc/sys/user/max_user_namespaces', { encoding: 'utf8', flag: 'r' }).trim() : '0';
    usernsAllowed = Number(max) > 0;
  }
  return usernsAllowed;
}

/**
 * The second unprivileged host id an OCI sandbox needs: its root (used by the runtime's init while
 * it builds the sandbox) maps to the partner of the run's host id, so the two stay inside the
 * configured range and differ.
 */
export function rootHostId(host: HostConfig, hostId: number): number {
  if (host.hostIdCount < 2) throw new PawlError('HostUnsupported', 'runc/crun need hostIdCount >= 2: the sandbox root and its user map to two host ids');
  return partnerId(host, hostId);
}

export interface OciFactsInput {
  id: string;
  /** The run's scratch dir: the bundle. */
  bundle: string;
  cgroupName: string;
  cgroupVersion: CgroupVersion;
  hostId: number | null;
  preserveFds: number;
}

/** The facts an OCI plan needs (null for bwrap): seccomp's linux.seccomp, host ids, state dir. */
export async function ociRunFacts(host: HostConfig, policy: Policy, i: OciFactsInput): Promise<OciRunFacts | null> {
  if (policy.runtime === 'bwrap') return null;
  if (i.hostId === null) throw new PawlError('HostUnsupported', `runtime "${policy.runtime}" needs pawl to run as root`);
  const [seccomp, hideUnified] = await Promise.all([seccompPlan(policy), hiddenCgroup2()]);
  return {
    id: i.id,
    bundle: i.bundle,
    cgroupsPath: `/${host.cgroupParent}/${i.cgroupName}`,
    cgroupVersion: i.cgroupVersion,
    hostIds: { user: i.hostId, root: rootHostId(host, i.hostId) },
    userns: userns(),
    seccomp: seccomp?.oci ?? null,
    stateRoot: OciRuntime.stateRoot(policy.runtime, host),
    hideUnified,
    preserveFds: i.preserveFds,
  };
}
