// The bubblewrap backend: spawned through the shim (shim.ts), which enters the run's cgroup and
// drops to the run's host id before exec'ing bwrap, so nothing of the run starts outside it.
// Its fds: the compiled seccomp filter, the set-up record (--block-fd) and bwrap's report of its
// init's pid (--info-fd), all files in the run's scratch dir.
import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { cgroupDriver } from '../../cgroup/index.js';
import type { RunCgroup } from '../../cgroup/types.js';
import type { HostConfig } from '../../config/host.js';
import { PawlError } from '../../errors.js';
import { hostLacks } from '../../hostfacts/capabilities.js';
import type { SandboxPlan } from '../../plan/plan.js';
import { idTime, ownerPid } from '../ids.js';
import { processStartTime } from '../../hostfacts/liveness.js';
import { spawnDirect, type Spawned } from '../spawn.js';
import { errnoName, lastErrno, loadLibc } from '../../util/libc.js';
import { bundleFiles } from '../oci/cli.js';
import { holdSubreaper, tryReap } from '../oci/reaper.js';
import type { ContainerRuntime, CreateOptions, Prepared, RunSite, RuntimeSandbox, SandboxExit, SandboxInfo } from '../types.js';
import { BWRAP, bwrapArgs, type BwrapFds } from './argv.js';
import { ensureShim, GO_FD, releaseShim, shimCommand } from './shim.js';
import { ChildStdio } from '../child-stdio.js';
import { AA_EXEC } from '../../lsm/host.js';
import { pollUntil, withDeadline } from '../../util/wait.js';

/** The spawned process's fds: 0-2 stdio, 3-4 the task protocol (task/protocol.ts), then bwrap's own. */
const FD = { seccomp: 5, ready: 6, info: 7, go: GO_FD, sources: GO_FD + 1 } as const;
const KILL_WAIT_MS = 2000;
const ORPHAN_WAIT_MS = 2000;

class BwrapSandbox extends ChildStdio implements RuntimeSandbox {
  readonly exited: Promise<SandboxExit>;
  readonly closed: Promise<void>;
  /** bwrap's program is a grandchild in a pid namespace: the audit session identifies it instead. */
  readonly initPid = null;
  /** bwrap reports a killed program as 128+N: a signal of its own exit is bwrap's, not the program's. */
  readonly signalIsProgram = false;
  /** bwrap has exited and its init is reaped (by bwrap, or by this process once orphaned). */
  private readonly reaped: Promise<void>;
  /** bwrap's init (pid 1 of the sandbox's pid namespace), once --info-fd has told. */
  private nsInit: InitProcess | null = null;
  private destroyed = false;

  constructor(child: Spawned, private readonly cgroup: RunCgroup, private readyFd: number) {
    super(child);
    // bwrap exits as soon as its init reports the program's status, often before it has reaped
    // that init: the orphan comes to this process (a child subreaper for the run) and is reaped
    // here, so no bwrap process of the run, zombie or not, outlives the result.
    // (The reaping is part of destroy(), the cleanup: the run's end and wall time are bwrap's exit.)
    const release = holdSubreaper();
    const init = readInit((child.stdio[FD.info] as Readable | null) ?? undefined, (found) => {
      this.nsInit = found;
      if (this.destroyed) this.closePidfd(); // told only after the teardown: nothing left to kill through it
    });
    this.exited = new Promise<SandboxExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.reaped = this.exited.then(async () => reapOrphan(await init)).finally(release);
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
  }

  get auditPid(): number | null {
    return this.child.pid ?? null;
  }

  async start(): Promise<void> {
    // bwrap runs from the moment it is spawned (a task's harness waits on fd 3 for its request).
  }

  /** Its stderr then says why: before set-up it is bwrap's or the shim's own, none of the program's. */
  readonly setupError = null;

  /** Set up means bwrap consumed the ready byte (our fd shares its offset). */
  setupFailed(): boolean {
    return this.readyFd >= 0 && readSync(this.readyFd, Buffer.alloc(1), 0, 1, null) !== 0;
  }

  /**
   * The runtime's init inside the sandbox dies first, which takes its whole pid namespace with it
   * and lets bwrap reap it and exit; killing the whole group at once would orphan that init.
   */
  async kill(): Promise<void> {
    const pid = this.child.pid;
    if (!pid || this.child.exitCode !== null || this.child.signalCode !== null) return;
    // The init as --info-fd told it; before that, found in the group as bwrap's child.
    if (!this.killNamespace() && (await this.killChildOf(pid)) === 0) return;
    // Dying takes a while for a big group held to a small CPU quota.
    await withDeadline(this.exited, KILL_WAIT_MS);
  }

  /** SIGKILL bwrap's direct children in the run's group (its init); how many. */
  private async killChildOf(pid: number): Promise<number> {
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
    // None: killed right after spawn, before bwrap forked its init (the group kill follows).
    return killed;
  }

  killNamespace(): boolean {
    const init = this.nsInit;
    if (!init) return false;
    // Through its pidfd: a pid bwrap has reaped and the kernel has given to another process is
    // never signalled (and nothing is read from /proc first: ~0.3 ms of a pooled run's end).
    if (init.pidfd >= 0) return loadLibc().pidfdKill(init.pidfd) === 0;
    // No pidfd (a kernel before 5.3): its start time, read again, stands for it.
    if (processStartTime(init.pid) !== init.startTime) return false;
    try {
      process.kill(init.pid, 'SIGKILL');
      return true;
    } catch {
      return false;
    }
  }

  /** Kill bwrap if it still runs, and wait for it and its init to be reaped; close the set-up record. */
  async destroy(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await withDeadline(this.reaped, KILL_WAIT_MS + ORPHAN_WAIT_MS);
    if (this.readyFd >= 0) closeSync(this.readyFd);
    this.readyFd = -1;
    this.destroyed = true;
    this.closePidfd();
  }

  private closePidfd(): void {
    if (this.nsInit && this.nsInit.pidfd >= 0) closeSync(this.nsInit.pidfd);
    if (this.nsInit) this.nsInit.pidfd = -1;
  }
}

interface InitProcess {
  pid: number;
  /** Its start time, read while it lived: a recycled pid is never taken for it. */
  startTime: number;
  /** A pidfd on it (-1: none), closed once it is reaped (destroy). */
  pidfd: number;
}

/** bwrap's --info-fd report ({"child-pid": N}), read as soon as it is written. */
function readInit(stream: Readable | undefined, onFound: (init: InitProcess) => void): Promise<InitProcess | null> {
  if (!stream) return Promise.resolve(null);
  return new Promise((resolve) => {
    let text = '';
    let found: InitProcess | null = null;
    stream.on('data', (b: Buffer) => {
      if (found || text.length > 4096) return;
      text += b.toString('utf8');
      const pid = Number(/"child-pid"\s*:\s*(\d+)/.exec(text)?.[1]);
      const startTime = pid > 0 ? processStartTime(pid) : null;
      if (startTime === null) return;
      // The pidfd names whatever holds the pid when it is opened: kept only if that is still the
      // process whose start time was just read.
      let pidfd = loadLibc().pidfdOpen(pid);
      if (pidfd >= 0 && processStartTime(pid) !== startTime) {
        closeSync(pidfd);
        pidfd = -1;
      }
      onFound((found = { pid, startTime, pidfd }));
    });
    stream.once('close', () => resolve(found));
    stream.once('error', () => resolve(found));
  });
}

/** Reap bwrap's init once it is this process's child (it was bwrap's until bwrap exited). */
async function reapOrphan(init: InitProcess | null): Promise<void> {
  if (!init) return;
  await pollUntil(async () => {
    if (processStartTime(init.pid) !== init.startTime) return true; // gone (bwrap reaped it), or the pid is someone else's now
    return parentPid(init.pid) === process.pid && tryReap(init.pid) !== null;
  }, ORPHAN_WAIT_MS, 2);
}

/** Read synchronously, as the cgroup files are (cgroup/files.ts): a /proc file is the kernel's memory, and this is polled every 2 ms. */
function parentPid(pid: number): number | null {
  let stat = '';
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    /* gone */
  }
  // The command name (field 2) may hold spaces and parentheses; ppid follows the last ')'.
  const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
  return ppid ? Number(ppid) : null;
}

/** A file in the run's scratch dir, opened read-only for the child (closed by the caller). */
function openFile(dir: string, name: string, content: Buffer | string): number {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return openSync(path, 'r');
}

export const bwrapRuntime: ContainerRuntime = {
  name: 'bwrap',
  keepsState: false,
  assertAvailable(): void {
    if (!existsSync(BWRAP)) throw hostLacks.program('bubblewrap', [BWRAP], 'bubblewrap');
  },
  async prepare(plan: SandboxPlan, site: RunSite): Promise<Prepared> {
    await ensureShim();
    // The shim's name for itself in its error messages: the sandbox never sees it, so cannot fake it.
    const shimTag = `pawl-shim-${site.secret}`;
    const fds: BwrapFds = { seccomp: plan.seccomp ? FD.seccomp : null, ready: FD.ready, info: FD.info, sources: FD.sources };
    const bwrap = { file: BWRAP, args: bwrapArgs(plan, fds) };
    // AppArmor: bwrap starts under the set-up profile, whose exec of the program enters the run's
    // profile (lsm/apparmor/setup.ts); aa-exec is what pawl spawns.
    const setup = plan.process.apparmorSetup;
    const runtime = setup ? { file: AA_EXEC, args: ['-p', setup, '--', bwrap.file, ...bwrap.args] } : bwrap;
    const spawnCmd = shimCommand(site.procsFiles, plan.rlimits.nofile, site.hostId, runtime, shimTag);
    return {
      runtime,
      spawn: spawnCmd,
      config: null,
      root: 'tmpfs, remounted read-only after set-up',
      async create(io: CreateOptions): Promise<RuntimeSandbox> {
        const seccomp = plan.seccomp ? openFile(site.dir, 'seccomp.bpf', plan.seccomp.bpf) : null;
        let ready: number | null = null;
        try {
          // The set-up record: a one-byte file bwrap reads (--block-fd) once the sandbox is set up.
          ready = openFile(site.dir, 'ready', '.');
          const task = plan.fds.task ? (['pipe', 'pipe'] as const) : (['ignore', 'ignore'] as const);
          // The shim's release pipe (shim.ts): its end at GO_FD, ours written once its rlimits are set.
          const go = loadLibc().socketpair();
          if (!go) throw new PawlError('RuntimeError', `cannot start the sandbox: socketpair: ${errnoName(lastErrno())}`);
          const [ours, theirs] = go;
          let released = false; // from then on ours is releaseShim's to close
          const stdio = [io.stdin, 'pipe', 'pipe', ...task, seccomp ?? 'ignore', ready, 'pipe', theirs, ...(site.sources?.fds ?? [])] as ('ignore' | 'inherit' | 'pipe' | number)[];
          let child: Spawned;
          try {
            // Released before anything waits for the shim: its pid is still its own (releaseShim).
            // Not released (a limit refused): it is killed and reaped, and runs nothing.
            child = spawnDirect(spawnCmd.file, spawnCmd.args, stdio, (pid) => {
              released = true;
              releaseShim(pid, plan.rlimits, site.hostId, ours);
            });
          } catch (e) {
            throw new PawlError('RuntimeError', `cannot start the sandbox: ${(e as Error).message}`);
          } finally {
            closeSync(theirs);
            if (!released) closeSync(ours);
          }
          const sandbox = new BwrapSandbox(child, io.cgroup, ready);
          ready = null; // the sandbox owns it now (destroy closes it)
          (child.stdio[3] as Writable | null)?.on('error', () => {}); // the sandbox may die before reading
          return sandbox;
        } finally {
          if (seccomp !== null) closeSync(seccomp);
          if (ready !== null) closeSync(ready);
        }
      },
    };
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
