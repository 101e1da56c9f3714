// The watch phase: while the sandbox runs, the cgroup poller (../watch.ts: peaks, CPU time, disk,
// the wall clock), the caller's abort signal, and the run's audit session (for seccomp kills).
// It ends the run through one kill switch, which keeps the first reason.
import type { HostConfig } from '../../config/host.js';
import type { Policy } from '../../config/policy.js';
import type { RunCgroup } from '../../cgroup/types.js';
import type { RuntimeSandbox } from '../../runtime/index.js';
import { auditSession } from '../../seccomp/index.js';
import type { KillReason } from '../classify.js';
import { Watch } from '../watch.js';
import { pollUntil } from '../../util/wait.js';

/** The supervisor's own audit session: the shim's fresh one differs from it once written. */
const SUPERVISOR_SESSION = auditSession(process.pid);
/** How long a run's audit session is looked for at most (its process ending stops it sooner). */
const SESSION_WAIT_MS = 60_000;

export class RunWatch {
  readonly poller: Watch;
  /** Why the supervisor ended the run (the first reason wins), or null. */
  reason: KillReason | null = null;
  /** Settles when the run is killed for any reason. */
  readonly killed: Promise<void>;
  /** The run's audit session once its first process has written it (root), or null. */
  auditSession: number | null = null;
  private onKilled!: () => void;
  /** The run has ended at its reply (Sandbox.endOrReply): a kill from now on gives no reason. */
  private ended = false;

  constructor(
    private readonly sandbox: RuntimeSandbox,
    private readonly cgroup: RunCgroup,
    policy: Policy,
    workspace: string,
    private readonly watchesSeccomp: boolean,
    /** When the run's processes began to be made (ms since the epoch): its audit records are not older. */
    readonly since: number,
  ) {
    this.killed = new Promise<void>((resolve) => (this.onKilled = resolve));
    this.poller = new Watch(cgroup, policy, workspace, (reason) => void this.kill(reason));
  }

  /** Start watching. A task sandbox may wait in a pool before its task comes: its wall clock starts at send(). */
  start(host: HostConfig, opts: { clock: boolean; signal?: AbortSignal }): void {
    void this.watchAuditSession();
    this.poller.start(host.pollIntervalMs, host.pollMaxIntervalMs, { clock: opts.clock });
    opts.signal?.addEventListener('abort', () => void this.kill('cancelled'), { once: true });
    if (opts.signal?.aborted) void this.kill('cancelled');
  }

  /**
   * End the run. The sandbox's init dies first (the runtime knows how), which takes its whole pid
   * namespace with it; the group kill then catches anything that is still there.
   */
  async kill(reason: KillReason): Promise<void> {
    if (!this.ended) this.reason ??= reason;
    this.onKilled();
    await this.sandbox.kill();
    await this.cgroup.kill({ firstKill: () => this.sandbox.killNamespace() }).catch(() => {
      try {
        if (this.sandbox.pid) process.kill(this.sandbox.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    });
  }

  /** The run ended at its reply: its clocks stop, and a later kill (a cancel) changes no verdict. */
  over(): void {
    this.ended = true;
    this.poller.stop();
  }

  /**
   * The run's audit session, which the shim makes fresh before exec (root only). Read as soon
   * as it is written, so that even a sandbox killed by its filter within milliseconds can be
   * matched to the kernel's record of the call, and for as long as that process lives: a shim
   * starved of CPU may write it late (under emulation, later than the 20 ms this once waited,
   * and then the kills of the run's children matched nothing).
   */
  private async watchAuditSession(): Promise<void> {
    const pid = this.sandbox.auditPid;
    if (!pid || !this.watchesSeccomp || process.geteuid?.() !== 0) return;
    let gone = false;
    void this.sandbox.exited.then(() => (gone = true), () => (gone = true));
    await pollUntil(() => {
      const ses = auditSession(pid);
      if (ses !== null && ses !== SUPERVISOR_SESSION) this.auditSession = ses;
      return this.auditSession !== null || gone;
    }, SESSION_WAIT_MS, (attempt) => (attempt < 20 ? 1 : attempt < 200 ? 5 : 50));
  }
}
