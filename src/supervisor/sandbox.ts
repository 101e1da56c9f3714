// One sandbox of one run, driven phase by phase (phases/): prepare (host, scratch, cgroup, plan,
// the backend's rendering), launch (create, io, start), watch, then at the end reap, classify and
// report, and release what the run held. A task sandbox can be started before its task is known:
// the harness blocks on fd 3 until send(). Before start() returns, failures are PawlErrors;
// after, every outcome (a sandbox that could not be set up included) is a RunResult.
import type { Readable, Writable } from 'node:stream';
import type { RunCgroup } from '../cgroup/types.js';
import type { EgressStats } from '../network/index.js';
import { hostConfig, type HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import { EGRESS_SOCKET } from '../rootfs/layout.js';
import type { RuntimeSandbox, SandboxExit } from '../runtime/index.js';
import type { HarnessReply, TaskRequest } from '../task/protocol.js';
import { classify, type KillReason } from './classify.js';
import { newRunId } from '../runtime/ids.js';
import { RunIo } from './phases/io.js';
import { prepareRun, type PreparedRun } from './phases/prepare.js';
import { awaitEnd, reap, type EndFacts } from './phases/reap.js';
import { round, runResult, usageOf, violationsOf } from './phases/report.js';
import { RunResources } from './phases/resources.js';
import { RunWatch } from './phases/watch.js';
import type { RunResult } from './result.js';
import type { Teardown } from './teardowns.js';

/** What reuse mode drives a task sandbox through (Sandbox.reuseHandle). */
export interface ReuseHandle {
  request: Writable;
  reply: Readable;
  cgroup: RunCgroup;
  egress: () => EgressStats | null;
  egressProxy: string | null;
  degraded: string[];
  notNeeded: string[];
}

export interface SandboxOptions {
  policy: Policy;
  host?: HostConfig;
  /** task: runs the harness and expects a reply on fd 4. program: runs `command` as is. */
  mode: 'task' | 'program';
  command?: string[];
  /** program mode: pass the program's stdin through. */
  stdin?: 'ignore' | 'inherit';
  /** program mode: also forward the (capped) output here as it arrives. */
  forwardStdout?: Writable;
  forwardStderr?: Writable;
  signal?: AbortSignal;
  /**
   * Task mode, single use (the pool, runTask by default): end the run at the harness's complete,
   * valid reply instead of waiting for node and the runtime to exit (see endAtReply below).
   */
  endAtReply?: boolean;
  /**
   * How long the teardown waits for /workspace's data to reach its image before it leaves the
   * mount to gc (workspace-fs.ts UNMOUNT_FLUSH_MS by default). A pool tears down after the result
   * has gone back, so it can wait longer than a run whose result waits for it.
   */
  unmountFlushMs?: number;
}

/** A run's result without its teardown, and the teardown in progress (Sandbox.settled). */
export interface Settled {
  result: RunResult;
  teardown: Promise<Teardown>;
}

/** The run's clock: each phase's start. */
interface Clock {
  begin: number;
  spawned: number;
  started: number;
  sent: number;
}

export class Sandbox {
  private sent = false;
  private resultP: Promise<RunResult> | null = null;
  private settledP: Promise<Settled> | null = null;
  private teardownP: Promise<Teardown> | null = null;
  /** endAtReply: the run ended at the harness's reply, not at an exit. */
  private endedAtReply = false;

  private constructor(
    readonly id: string,
    readonly policy: Policy,
    readonly host: HostConfig,
    private readonly mode: 'task' | 'program',
    private readonly res: RunResources,
    private readonly prep: PreparedRun,
    private readonly run: RuntimeSandbox,
    private readonly io: RunIo,
    private readonly watch: RunWatch,
    private readonly t: Clock,
    private readonly replied: Promise<void> | null,
    /** Task mode: the harness's ready byte came (true), or the sandbox ended first (false). */
    private readonly booted: Promise<boolean>,
  ) {}

  /** Prepare and launch. Throws a PawlError (after removing whatever was made) when no sandbox could be made. */
  static async start(opts: SandboxOptions): Promise<Sandbox> {
    const id = newRunId();
    const host = opts.host ?? hostConfig();
    const { policy } = opts;
    const t: Clock = { begin: performance.now(), spawned: 0, started: 0, sent: 0 };
    const res = new RunResources(id, policy, host, opts.unmountFlushMs);
    const prep = await prepareRun({ policy, host, mode: opts.mode, command: opts.command }, res);
    const { cgroup } = prep;
    let watch: RunWatch | null = null;
    let onReply!: () => void;
    const replied = new Promise<void>((r) => (onReply = r));
    let onReady!: () => void;
    const ready = new Promise<void>((r) => (onReady = r));
    const endAtReply = opts.endAtReply === true && opts.mode === 'task';
    const io = new RunIo(policy, {
      forwardStdout: opts.forwardStdout, forwardStderr: opts.forwardStderr, onReplyTooLarge: () => void watch?.kill('output'),
      ...(endAtReply ? { onReplyFrame: onReply } : {}),
      onReady,
    });
    // launch: create (the program does not run yet), readers on its pipes, then start.
    t.spawned = performance.now();
    const spawnedAt = Date.now();
    let run: RuntimeSandbox;
    try {
      run = res.sandbox = await prep.backend.create({ stdin: opts.stdin ?? 'ignore', cgroup });
    } catch (e) {
      await res.release();
      throw e;
    }
    io.attach(run);
    watch = new RunWatch(run, cgroup, policy, prep.scratch.workspace, prep.plan.seccomp !== null, spawnedAt);
    // A set-up failure is not thrown: the run ends at once and its result says RuntimeError.
    await run.start();
    await res.closeSources();
    t.started = performance.now();
    const booted = Promise.race([ready.then(() => true), run.exited.then(() => false)]);
    const sb = new Sandbox(id, policy, host, opts.mode, res, prep, run, io, watch, t, endAtReply ? replied : null, booted);
    watch.start(host, { clock: opts.mode !== 'task', signal: opts.signal });
    return sb;
  }

  /**
   * Hand the task to the harness (task mode): once it has booted, the run's CPU quota, then the
   * request. The wall clock runs from the call (a cold run's boot counts, as it always did).
   */
  async send(req: TaskRequest): Promise<void> {
    if (this.sent) throw new Error('a sandbox runs one task');
    this.sent = true;
    this.t.sent = performance.now();
    this.watch.poller.startClock();
    await this.handOver();
    RunIo.send(this.run, { ...req, ...(this.res.egress ? { egressProxy: EGRESS_SOCKET } : {}) });
  }

  /** Task mode: the harness has booted and waits for its request (false: the sandbox ended first). */
  whenBooted(): Promise<boolean> {
    return this.booted;
  }

  /**
   * From here on code of the task may run: the CPU quota create() left for now
   * (CgroupLimits.cpuAtDispatch) is written, after the harness's ready byte, so node's boot ran
   * without it. A harness that died first is left to the run's end (the request finds no reader).
   * A quota the kernel refuses ends the sandbox, torn down, and is thrown: no task runs without it.
   */
  private async handOver(): Promise<void> {
    if (!(await this.booted)) return;
    try {
      this.prep.cgroup.limitCpu();
    } catch (e) {
      await this.kill('cancelled');
      await this.result().catch(() => {});
      throw e;
    }
  }

  /**
   * Reuse mode (pool/reuse.ts): the task protocol's pipes handed over for several runs, each
   * framed and judged by the reuse session; this sandbox's own result() then only ends it.
   */
  async reuseHandle(): Promise<ReuseHandle> {
    if (this.sent || this.mode !== 'task' || !this.run.request || !this.run.reply) throw new Error('a sandbox runs one task');
    this.sent = true;
    // After the ready byte (taken off fd 4 by RunIo): the session reads only its replies.
    await this.handOver();
    this.io.detachReply(this.run);
    return {
      request: this.run.request, reply: this.run.reply, cgroup: this.prep.cgroup, egress: () => this.res.egress?.stats() ?? null,
      egressProxy: this.res.egress ? EGRESS_SOCKET : null, degraded: this.prep.degraded, notNeeded: this.prep.notNeeded,
    };
  }

  /** The sandbox's own process: the OCI container's init, or for bwrap the spawned shim (which execs into bwrap). */
  get pid(): number | undefined {
    return this.run.initPid ?? this.run.pid;
  }

  /** The host pids of every process in the run's cgroup. */
  pids(): Promise<number[]> {
    return this.prep.cgroup.pids();
  }

  /**
   * A run ended at its reply (endAtReply): the harness's reply as soon as its frame came, before
   * the reap (null: not such a run, or it ended otherwise). A caller may start work on the output
   * meanwhile; the result's verdict still decides what it is (a limit crossed before the reply
   * wins over it: classify.ts). Settles by the time the run's result does, also when a killed
   * process never exits (reap.ts awaitEnd gives it up after a grace period).
   */
  earlyReply(): Promise<HarnessReply | null> {
    if (!this.replied) return Promise.resolve(null);
    const over = this.settled().then(() => null, () => null);
    return Promise.race([this.replied.then(() => this.io.parsedReply()), this.run.exited.then(() => null), over]);
  }

  /** Settles when that process has exited: a pool drops a sandbox that died while idle. */
  get ended(): Promise<unknown> {
    return this.run.exited;
  }

  /** End the run (the first reason is the one reported). */
  kill(reason: KillReason): Promise<void> {
    return this.watch.kill(reason);
  }

  /**
   * Wait for the end, reap, classify and report, after the teardown (cgroup, /workspace mount,
   * scratch dir): the result carries `cleanup_error` when something stayed. (A task's output is
   * checked against its schema by the caller, off the event loop: run.ts.)
   */
  result(): Promise<RunResult> {
    this.resultP ??= this.settled().then(async ({ result, teardown }) => {
      const { error, ms } = await teardown;
      return { ...result, ...(error ? { cleanup_error: error } : {}), timings_ms: { ...result.timings_ms, cleanup: round(result.timings_ms.cleanup + ms) } };
    });
    return this.resultP;
  }

  /**
   * The result as soon as the verdict and usage are final: every process of the run is gone (its
   * group emptied or killed) and its last figures are read. The teardown (the runtime's state,
   * the cgroup, the /workspace unmount and its syncfs, the scratch dir) starts on the event loop's
   * next turn (after the result has reached its caller) and settles with its failure, if any,
   * which is on the leftover list already (resources.ts). Until it settles a ref'd handle keeps
   * the process alive: nothing of a run is left for an exit to cut short. A caller that delivers the result early owns waiting for `teardown` (the pool does).
   */
  settled(): Promise<Settled> {
    this.settledP ??= this.finish();
    return this.settledP;
  }

  private async finish(): Promise<Settled> {
    const exit = await this.endOrReply();
    const ended = performance.now();
    this.watch.poller.stop();
    const reapStart = performance.now();
    let end: EndFacts;
    try {
      end = await reap(exit, {
        sandbox: this.run, watch: this.watch, io: this.io, res: this.res, workspace: this.prep.scratch.workspace, diskSpace: this.policy.resources.diskSpace,
        mode: this.mode, seccomp: this.prep.plan.seccomp, atReply: this.endedAtReply,
      });
    } catch (e) {
      // Even when reading the end failed: nothing of the run survives it.
      await this.teardown();
      throw e;
    }
    const reaped = performance.now();
    // On the next turn of the event loop: its first steps run synchronously (cgroup reads, kills),
    // and started here they would come before the result reaches a caller that has it early (the pool).
    const teardown = new Promise<void>((r) => setImmediate(r)).then(() => this.teardown());
    const verdict = classify({
      mode: this.mode,
      policy: this.policy,
      killReason: this.watch.reason,
      exitCode: exit.code,
      // Only a signal waitpid saw for the program itself is a kernel fact (OCI init); bwrap's is its own.
      signal: this.run.signalIsProgram ? exit.signal : null,
      setupFailed: end.setupFailed,
      setupError: this.run.setupError,
      oomKills: end.stats?.oomKills ?? 0,
      pidsLimitHits: end.stats?.pidsLimitHits ?? 0,
      stderr: end.stderr,
      reply: end.reply,
      replyProblem: this.io.replyProblem,
      seccompKills: end.seccompKills,
      refusesWithEperm: this.prep.plan.seccomp ? this.prep.plan.seccomp.refusesWithEperm : null,
      cpuMs: (end.stats?.cpuUsageUs ?? 0) / 1000,
      workspaceBytes: end.workspaceBytes,
      proxyDenials: (end.egress?.denials ?? []).map((d) => `${d.target} (${d.reason})`),
      workspaceFull: end.workspaceFull,
    });
    const runMs = ended - Math.max(this.t.started, this.t.sent);
    const result = runResult({
      id: this.id,
      policy: this.policy,
      cgroup: this.prep.plan.cgroupVersion,
      verdict,
      usage: usageOf(end, this.policy, this.watch.poller.peaks, runMs),
      violations: violationsOf(end),
      stdout: end.stdout,
      stderr: end.stderr,
      stdoutDropped: this.io.stdout.dropped,
      stderrDropped: this.io.stderr.dropped,
      degraded: this.prep.degraded,
      notNeeded: this.prep.notNeeded,
      timings: {
        prepare: round(this.t.spawned - this.t.begin),
        start: round(this.t.started - this.t.spawned),
        run: round(runMs),
        // The reap (the last figures); result() adds the teardown's time.
        cleanup: round(reaped - reapStart),
      },
    });
    return { result, teardown };
  }

  /**
   * The run's end: the program's exit, or (endAtReply) the harness's complete, valid reply,
   * whichever comes first. The reply is written by code in the task's own process, so it cannot
   * be trusted to mean "the task is done": a timer, a promise or a child the task started may
   * still run. That is why the run ends there: reap kills the whole group at once (the same kill
   * every other end gets), so nothing the task started runs past its reply, and what it printed
   * before is already in the pipes (the harness flushes node's stdout and stderr before it
   * replies: harness.ts reply()), which reap drains to EOF. What the supervisor decides still
   * wins over the reply when it happened before it: a kill reason already set (wall, cpu, disk,
   * pids, output, cancelled), and the kernel's counters and records read after the kill (OOM
   * kills, pids limit hits, CPU time, workspace size, seccomp kills) all come first in classify.
   * A run ended this way reports the harness's own exit after a reply, status 0 (README "The
   * result").
   */
  private endOrReply(): Promise<SandboxExit> {
    const end = awaitEnd(this.run, this.watch);
    if (!this.replied) return end;
    return Promise.race([end, this.replied.then((): SandboxExit => {
      // From here on the supervisor's own kill (the reap's) carries no reason: the run is over.
      this.watch.over();
      this.endedAtReply = true;
      return { code: 0, signal: null };
    })]);
  }

  /** Release what the run held, once (resources.ts records a failure on the leftover list). */
  private teardown(): Promise<Teardown> {
    this.teardownP ??= (async () => {
      const t0 = performance.now();
      const keepAlive = setInterval(() => {}, 1 << 30);
      try {
        return { error: await this.res.release(), ms: performance.now() - t0 };
      } finally {
        clearInterval(keepAlive);
      }
    })();
    return this.teardownP;
  }
}
