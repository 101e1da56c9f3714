// One sandbox, phase by phase: prepare (rootfs, scratch, cgroup, plan), spawn (through the shim,
// so it is inside its cgroup before anything runs), watch, reap (kill the group, final stats,
// remove group and scratch), report. A task sandbox can be started before its task is known:
// the harness blocks on fd 3 until send().
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { hostConfig, type HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import type { CgroupStats, RunCgroup } from '../cgroup/types.js';
import { randomBytes } from 'node:crypto';
import { PawlError } from '../errors.js';
import { ensureRootfs } from '../rootfs/index.js';
import { ociRunFacts, runtimeFor, type RuntimeSandbox } from '../runtime/index.js';
import type { HarnessReply, TaskRequest } from '../task/protocol.js';
import { parseReply } from '../task/reply.js';
import { classify, type KillReason } from './classify.js';
import { assertSupported, driverFor, storagePlan } from './host.js';
import { assertHostIds, newRunId, pickHostId, releaseHostId } from './ids.js';
import { HARNESS_COMMAND, INFO_FD, limitsFor, planRun, READY_FD, SECCOMP_FD } from './plan.js';
import type { RunResult } from './result.js';
import { createScratch, removeTree, treeUsage, type Scratch } from './scratch.js';
import { recordLeftover } from './leftovers.js';
import { mountWorkspace, unmountWorkspace, workspaceFull } from './workspace-fs.js';
import { Watch } from './watch.js';
import { factsCache } from '../hostfacts/cache.js';
import { collectGarbageOnce } from './gc.js';
import { auditSession, seccompPlan, type SeccompPlan } from '../seccomp/index.js';
import { listenSeccompAudit, readSeccompRecords, recordSyscallName, runRecords } from '../seccomp/classify.js';
import { EgressProxy, type EgressStats } from '../network/index.js';
import { EGRESS_SOCKET } from '../rootfs/layout.js';
import { prepareLsm } from '../lsm/apply.js';
import { closeSources, ociSourcePaths, openSources, type OpenedSources } from '../fs/mounts.js';
import { landlockDegraded } from '../lsm/landlock/probe.js';

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
}

const RESULT_MAX = 16 * 1024 * 1024; // a reply larger than this ends the run (ResourceExhausted/output)

class Capped {
  chunks: Buffer[] = [];
  kept = 0;
  dropped = 0;
  constructor(private readonly max: number, private readonly forward?: Writable) {}
  push(b: Buffer): void {
    const room = this.max - this.kept;
    const keep = room >= b.length ? b : b.subarray(0, Math.max(0, room));
    if (keep.length) {
      this.chunks.push(keep);
      this.kept += keep.length;
      this.forward?.write(keep);
    }
    this.dropped += b.length - keep.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export class Sandbox {
  readonly id = newRunId();
  private child!: ChildProcess;
  private run!: RuntimeSandbox;
  private cgroup!: RunCgroup;
  private scratch!: Scratch;
  private watch!: Watch;
  private killReason: KillReason | null = null;
  private stdout!: Capped;
  private stderr!: Capped;
  private reply: Buffer[] = [];
  private replyBytes = 0;
  private replyProblem: string | null = null;
  private exited!: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private closed!: Promise<void>;
  private t = { begin: performance.now(), spawned: 0, started: 0, sent: 0, ended: 0 };
  private degraded: string[] = [];
  private notNeeded: string[] = [];
  private sent = false;
  private cgroupVersion: 'v1' | 'v2' = 'v1';
  private seccomp: SeccompPlan | null = null;
  private auditSession: number | null = null;
  private hostId: number | null = null;
  /** bwrap: our fd on the run's set-up record (plan.ts READY_FD); its offset says whether set-up finished. */
  private readyFd: number | null = null;
  /** Restricted network: the run's egress proxy (outside the sandbox), and its final figures. */
  private egress: EgressProxy | null = null;
  private egressStats: EgressStats | null = null;
  /** The shim's name for itself in its error messages: the sandbox never sees it, so cannot fake it. */
  private onKilled!: () => void;
  private readonly killed = new Promise<void>((resolve) => (this.onKilled = resolve));
  private readonly shimTag = `pawl-shim-${randomBytes(6).toString('hex')}`;
  /** fs: the run's opened mount sources, until the runtime has made its mounts. */
  private fsSources: OpenedSources | null = null;

  private constructor(readonly policy: Policy, readonly host: HostConfig, private readonly opts: SandboxOptions) {}

  /** Prepare and spawn. On failure everything created so far is removed before the error propagates. */
  static async start(opts: SandboxOptions): Promise<Sandbox> {
    const sb = new Sandbox(opts.policy, opts.host ?? hostConfig(), opts);
    try {
      await sb.prepareAndSpawn();
    } catch (e) {
      await closeSources(sb.fsSources);
      await sb.cleanupOrRecord();
      throw e;
    }
    return sb;
  }

  private async prepareAndSpawn(): Promise<void> {
    const { policy, host, opts } = this;
    assertSupported(policy);
    this.degraded.push(...(await prepareLsm(policy))); // src/lsm/apply.ts: refuse, or load the AppArmor profile
    void collectGarbageOnce(host);
    const driver = await driverFor(host);
    this.cgroupVersion = driver.version;
    // The rootfs dir's storage is its parent's (both under stateDir): no need to wait for the build.
    const [rootfs, storage] = await Promise.all([ensureRootfs(host), storagePlan(host, policy, join(host.stateDir, 'rootfs')), assertHostIds(host)]);
    this.degraded.push(...storage.degraded);
    this.notNeeded = storage.notNeeded;
    const hostId = (this.hostId = pickHostId(host));
    this.scratch = await createScratch(host.runDir, this.id, hostId, host.cgroupParent);
    const command = opts.mode === 'task' ? HARNESS_COMMAND : opts.command ?? [];
    if (command.length === 0) throw new PawlError('InvalidPolicy', 'no program to run');
    const cgroupName = `run-${this.id}`;
    const egressSocket = join(this.scratch.dir, 'egress.sock');
    if (policy.network.mode === 'restricted') this.egress = await EgressProxy.start({ policy: policy.network, socketPath: egressSocket, owner: hostId });
    // Independent steps side by side; whatever was created is recorded before any error
    // propagates, so the cleanup on the way out removes it.
    // The cgroup waits for /workspace's filesystem: its io limits name the loop device too.
    const workspaceDevices = storage.workspaceFs ? mountWorkspace(this.scratch.dir, this.scratch.workspace, policy, hostId, factsCache(host.stateDir)) : Promise.resolve([]);
    const withWorkspace = (devs: string[]) => [...new Set([...storage.ioDevices, ...devs])];
    const [seccompR, ociR, cgroupR, workspaceR] = await Promise.allSettled([
      this.seccompFile(),
      ociRunFacts(host, policy, {
        id: this.id, bundle: this.scratch.dir, cgroupName, cgroupVersion: driver.version, hostId, preserveFds: opts.mode === 'task' ? 2 : 0,
      }),
      workspaceDevices.then((devs) => driver.create(cgroupName, limitsFor(policy, withWorkspace(devs)))),
      workspaceDevices,
    ]);
    if (cgroupR.status === 'fulfilled') this.cgroup = cgroupR.value;
    if (seccompR.status === 'fulfilled' && seccompR.value !== null && [ociR, cgroupR, workspaceR].some((r) => r.status === 'rejected')) closeSync(seccompR.value);
    for (const r of [seccompR, ociR, cgroupR, workspaceR]) if (r.status === 'rejected') throw r.reason;
    const seccomp = (seccompR as PromiseFulfilledResult<number | null>).value;
    if (policy.runtime === 'bwrap') this.readyFd = this.readyFile();
    const oci = (ociR as PromiseFulfilledResult<Awaited<ReturnType<typeof ociRunFacts>>>).value;
    const ioDevices = withWorkspace((workspaceR as PromiseFulfilledResult<string[]>).value);
    this.degraded.push(...landlockDegraded(policy)); // fs: Landlock missing (refused when required)
    const fsSources = (this.fsSources = await openSources(policy, host, this.id)); // fs: bind/volume sources, no symlinks
    const plan = planRun({
      policy, cgroupName, driver, procsFiles: this.cgroup.procsFiles, rootfs: rootfs.path, workspace: this.scratch.workspace,
      command, ioDevices, hostId, seccompFd: seccomp === null ? null : SECCOMP_FD, readyFd: this.readyFd === null ? null : READY_FD, infoFd: this.readyFd === null ? null : INFO_FD, oci, shimTag: this.shimTag,
      egressSocket: this.egress ? egressSocket : null, mountSources: ociSourcePaths(fsSources),
    });

    const r = policy.resources;
    this.stdout = new Capped(r.stdoutMax, opts.forwardStdout);
    this.stderr = new Capped(r.stderrMax, opts.forwardStderr);
    const taskFds = opts.mode === 'task' ? (['pipe', 'pipe'] as const) : (['ignore', 'ignore'] as const);
    this.t.spawned = performance.now();
    try {
      this.run = await runtimeFor(policy.runtime).create(plan, { stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe', ...taskFds, seccomp ?? 'ignore', ...(this.readyFd === null ? [] : [this.readyFd, 'pipe' as const, ...fsSources.fds])], cgroup: this.cgroup });
    } finally {
      if (seccomp !== null) closeSync(seccomp);
    }
    this.child = this.run.child;
    this.exited = this.run.exited;
    this.closed = this.run.closed;
    // Readers first: the spawned process may exit before the program writes (runc/crun create),
    // and node drains the pipes of an exited child that have none.
    this.child.stdout!.on('data', (b: Buffer) => this.stdout.push(b));
    this.child.stderr!.on('data', (b: Buffer) => this.stderr.push(b));
    if (opts.mode === 'task') {
      (this.child.stdio[4] as Readable).on('data', (b: Buffer) => this.onReply(b));
      (this.child.stdio[3] as Writable).on('error', () => {}); // the sandbox may die before reading
    }
    await this.run.start();
    await closeSources(fsSources); // fs: the runtime has made its mounts (runc/crun: once create has exited)
    this.t.started = performance.now();
    void this.watchAuditSession();
    this.watch = new Watch(this.cgroup, policy, this.scratch.workspace, (reason) => void this.kill(reason));
    // A task sandbox may wait in a pool before its task comes: its wall clock starts at send().
    this.watch.start(host.pollIntervalMs, { clock: opts.mode !== 'task' || this.sent });
    opts.signal?.addEventListener('abort', () => void this.kill('cancelled'), { once: true });
    if (opts.signal?.aborted) void this.kill('cancelled');
  }

  /** bwrap: the compiled seccomp filter as an open fd for the child (OCI runtimes get the JSON). */
  private async seccompFile(): Promise<number | null> {
    this.seccomp = await seccompPlan(this.policy, factsCache(this.host.stateDir));
    if (this.seccomp) listenSeccompAudit();
    if (!this.seccomp || this.policy.runtime !== 'bwrap') return null;
    const path = join(this.scratch.dir, 'seccomp.bpf');
    writeFileSync(path, this.seccomp.bpf, { mode: 0o600 });
    return openSync(path, 'r');
  }

  /** bwrap's set-up record: a one-byte file it reads (--block-fd) once the sandbox is set up. */
  private readyFile(): number {
    const path = join(this.scratch.dir, 'ready');
    writeFileSync(path, '.', { mode: 0o600 });
    return openSync(path, 'r');
  }

  /** Did the runtime finish setting up? bwrap: it consumed the ready byte (our fd shares the offset). */
  private setupFinished(): boolean {
    if (this.readyFd === null) return true; // OCI: a failed create never gets this far (start() throws)
    return readSync(this.readyFd, Buffer.alloc(1), 0, 1, null) === 0;
  }

  /**
   * Every seccomp kill of the run's processes, from the kernel's audit records (root, with the
   * run's audit session or init pid). kauditd prints asynchronously: when the exit looks like a
   * kill, wait briefly for its record.
   */
  private async seccompKills(exitLooksKilled: boolean): Promise<{ syscall: string | null }[]> {
    if (!this.seccomp || (this.auditSession === null && this.run.initPid === null)) return [];
    const key = { ...(this.auditSession !== null ? { session: this.auditSession } : {}), ...(this.run.initPid !== null ? { pids: [this.run.initPid] } : {}) };
    for (let i = 0; ; i++) {
      const found = runRecords(key, readSeccompRecords());
      // A death that looks like a kill waits up to 200 ms for its record; under a filter that
      // kills, a child's kill may have been printed just now (one short second look).
      const tries = exitLooksKilled ? 20 : this.seccomp.killsOnViolation ? 1 : 0;
      if (found.length || i >= tries) return found.map((r) => ({ syscall: recordSyscallName(r) }));
      await new Promise((r) => setTimeout(r, exitLooksKilled ? 10 : 5));
    }
  }

  /**
   * The run's audit session, which the shim makes fresh before exec (root only). Read as soon
   * as the shim has written it, so that even a sandbox killed by its filter within milliseconds
   * can be matched to the kernel's record of the call.
   */
  private async watchAuditSession(): Promise<void> {
    const pid = this.child.pid;
    if (!pid || !this.seccomp || process.geteuid?.() !== 0) return;
    for (let i = 0; i < 20 && this.auditSession === null; i++) {
      const ses = auditSession(pid);
      if (ses !== null && ses !== SUPERVISOR_SESSION) this.auditSession = ses;
      else await new Promise((r) => setTimeout(r, 1));
    }
  }

  private onReply(b: Buffer): void {
    this.replyBytes += b.length;
    if (this.replyBytes > RESULT_MAX) {
      if (!this.replyProblem) {
        this.replyProblem = `the task's result exceeds ${RESULT_MAX} bytes`;
        void this.kill('output');
      }
      return;
    }
    this.reply.push(b);
  }

  /** Hand the task to the harness (task mode). */
  send(req: TaskRequest): void {
    if (this.sent) throw new Error('a sandbox runs one task');
    this.sent = true;
    this.t.sent = performance.now();
    this.watch?.startClock();
    const egress = this.egress ? { egressProxy: EGRESS_SOCKET } : {};
    (this.child.stdio[3] as Writable).end(JSON.stringify({ ...req, ...egress }));
  }

  /**
   * Reuse mode's way in (src/pool/reuse.ts): the request and reply pipes, handed over for good
   * (no send(), no one-reply accounting, no wall clock: the session times each run itself), and
   * the live facts it reports each run from.
   */
  reuseHandle(): ReuseHandle {
    if (this.sent || this.opts.mode !== 'task') throw new Error('a sandbox runs one task');
    this.sent = true;
    const reply = this.child.stdio[4] as Readable;
    reply.removeAllListeners('data');
    return {
      request: this.child.stdio[3] as Writable, reply, cgroup: this.cgroup, egress: () => this.egress?.stats() ?? null,
      egressProxy: this.egress ? EGRESS_SOCKET : null, degraded: this.degraded, notNeeded: this.notNeeded,
    };
  }

  /** The sandbox's own process: the OCI container's init, or for bwrap the spawned shim (which execs into bwrap). */
  get pid(): number | undefined {
    return this.run?.initPid ?? this.child?.pid;
  }

  /** The host pids of every process in the run's cgroup. */
  pids(): Promise<number[]> {
    return this.cgroup.pids();
  }

  /** Settles when that process has exited: a pool drops a sandbox that died while idle. */
  get ended(): Promise<unknown> {
    return this.exited;
  }

  /**
   * End the run. The sandbox's init dies first (the runtime knows how: runtime/), which takes its
   * whole pid namespace with it; the group kill then catches anything that is still there.
   */
  async kill(reason: KillReason): Promise<void> {
    this.killReason ??= reason;
    this.onKilled();
    await this.run.kill();
    await this.cgroup.kill().catch(() => this.child.kill('SIGKILL'));
  }

  /** Wait for the end, reap and report. (A task's output is checked against its schema by the caller, off the event loop: run.ts.) */
  async result(): Promise<RunResult> {
    // A process asleep in uninterruptible I/O cannot die until the I/O ends: once the supervisor
    // has killed the run, its verdict does not wait for that past a grace period (the group
    // then stays, on the leftover list, for gc).
    const { code, signal } = await Promise.race([this.exited, this.killed.then(() => sleep(KILL_GRACE_MS)).then(() => ({ code: null, signal: null }))]);
    this.t.ended = performance.now();
    this.watch.stop();
    const reapStart = performance.now();
    let verdict: ReturnType<typeof classify>;
    let stats: CgroupStats | null;
    let workspaceBytes: number;
    let reply: HarnessReply | null;
    let stderr = '';
    let seccompKills: { syscall: string | null }[] = [];
    let cleanupError: string | null = null;
    try {
      // Anything the program left behind dies with the group, which also closes its pipes.
      await this.killGroupIfPopulated();
      await Promise.race([this.closed, new Promise((r) => setTimeout(r, 2000))]);
      stderr = this.stderr.text(); // only now is everything the program wrote in
      // The sandbox is gone: the proxy's counts and denials are final.
      this.egressStats = await this.closeEgress();
      await this.watch.poll(true);
      stats = this.watch.last;
      workspaceBytes = Math.max(this.watch.peaks.workspaceBytes, await treeUsage(this.scratch.workspace, { live: false }));
      reply = this.opts.mode === 'task' ? this.parseReply() : null;
      seccompKills = await this.seccompKills(signal === 'SIGSYS' || code === 128 + 31);
      verdict = classify({
        mode: this.opts.mode,
        policy: this.policy,
        killReason: this.killReason,
        exitCode: code,
        // bwrap's exit is its own; only an OCI init's status is the program's (waitpid by pid).
        signal: this.policy.runtime === 'bwrap' ? null : signal,
        setupFailed: !this.setupFinished(),
        oomKills: stats?.oomKills ?? 0,
        pidsLimitHits: stats?.pidsLimitHits ?? 0,
        stderr,
        reply,
        replyProblem: this.replyProblem,
        seccompKills,
        refusesWithEperm: this.seccomp ? this.seccomp.refusesWithEperm : null,
        cpuMs: (stats?.cpuUsageUs ?? 0) / 1000,
        workspaceBytes,
        proxyDenials: (this.egressStats?.denials ?? []).map((d) => `${d.target} (${d.reason})`),
        workspaceFull: this.watch.peaks.workspaceFull || (await workspaceFull(this.scratch.workspace)),
      });
    } finally {
      // On every path out, even when reading the end failed: nothing of the run survives it. A
      // cleanup that fails (a group stuck in D state) never replaces the verdict: what is left
      // goes on the leftover list, which gc retries.
      cleanupError = await this.cleanupOrRecord();
    }
    const cleanupMs = performance.now() - reapStart;
    // What the task reported is its account; what the kernel recorded is the supervisor's.
    const violations = [
      ...(reply?.violations ?? []).map((v) => ({ ...v, source: 'task' as const })),
      ...seccompKills.map((k) => ({ kind: 'syscall' as const, detail: k.syscall ?? 'unknown system call (SIGSYS)', source: 'supervisor' as const })),
      ...(this.egressStats?.denials ?? []).map((d) => ({ kind: 'network' as const, detail: `egress proxy denied ${d.target}: ${d.reason}`, source: 'supervisor' as const })),
    ];
    const moreDenials = (this.egressStats?.deniedTotal ?? 0) - (this.egressStats?.denials.length ?? 0);
    if (moreDenials > 0) violations.push({ kind: 'network', detail: `egress proxy denied ${moreDenials} more request(s)`, source: 'supervisor' });
    return {
      id: this.id,
      ...verdict,
      usage: {
        wall_ms: round(this.t.ended - Math.max(this.t.started, this.t.sent)),
        cpu_ms: round((stats?.cpuUsageUs ?? 0) / 1000),
        peak_memory_bytes: this.watch.peaks.memoryBytes,
        peak_pids: this.watch.peaks.pids,
        disk_read_bytes: stats?.ioReadBytes ?? 0,
        disk_write_bytes: stats?.ioWriteBytes ?? 0,
        // full: the host's namespace has no per-run counters (null); restricted: the proxy's counts.
        net_rx_bytes: this.policy.network.mode === 'full' ? null : this.egressStats?.rxBytes ?? 0,
        net_tx_bytes: this.policy.network.mode === 'full' ? null : this.egressStats?.txBytes ?? 0,
        peak_fds: this.watch.peaks.fds,
        workspace_bytes: Number.isFinite(workspaceBytes) ? workspaceBytes : null,
      },
      violations,
      stdout: this.stdout.text(),
      stderr,
      stdout_dropped_bytes: this.stdout.dropped,
      stderr_dropped_bytes: this.stderr.dropped,
      runtime: this.policy.runtime,
      cgroup: this.cgroupVersion,
      trust_level: this.policy.trustLevel,
      degraded: this.degraded,
      ...(cleanupError ? { cleanup_error: cleanupError } : {}),
      not_needed: this.notNeeded,
      timings_ms: {
        prepare: round(this.t.spawned - this.t.begin),
        start: round(this.t.started - this.t.spawned),
        run: round(this.t.ended - Math.max(this.t.started, this.t.sent)),
        cleanup: round(cleanupMs),
      },
    };
  }

  private parseReply(): HarnessReply | null {
    if (this.replyProblem || this.reply.length === 0) return null;
    const parsed = parseReply(Buffer.concat(this.reply).toString('utf8'));
    if ('problem' in parsed) {
      this.replyProblem = parsed.problem;
      return null;
    }
    return parsed.reply;
  }

  /** A normal end empties the group already (the pid namespace dies with its init): skip the
   * freeze-and-kill round trip then, it costs milliseconds on v1. */
  private async killGroupIfPopulated(): Promise<void> {
    const left = await this.cgroup.pids().catch(() => [1]);
    if (left.length) await this.cgroup.kill().catch(() => {});
  }

  /** cleanup(), and on failure the leftover record for gc; returns the failure's message, or null. */
  private async cleanupOrRecord(): Promise<string | null> {
    try {
      await this.cleanup();
      return null;
    } catch (e) {
      const message = (e as Error).message;
      await recordLeftover(this.host, {
        id: this.id, runtime: this.policy.runtime, cgroup: this.cgroup ? this.cgroup.name : null, scratch: this.scratch ? this.scratch.dir : null, error: message,
      }).catch(() => {});
      return message;
    }
  }

  /** Stop the run's egress proxy (idempotent) and take its final figures. */
  private async closeEgress(): Promise<EgressStats | null> {
    if (!this.egress) return null;
    await this.egress.close();
    return this.egress.stats();
  }

  /** Remove the cgroup and scratch dir. Only after every process of the run is dead. */
  private async cleanup(): Promise<void> {
    if (this.readyFd !== null) closeSync(this.readyFd);
    this.readyFd = null;
    await this.closeEgress().catch(() => {});
    if (this.cgroup) await this.killGroupIfPopulated();
    try {
      // The runtime's own state (runc/crun delete --force), on every path out.
      await this.run?.destroy();
    } finally {
      // The scratch dir only once the group is gone: rmdir succeeding proves no process of the
      // run is left to race the removal. Otherwise it stays for gc, which checks the same.
      if (this.cgroup) await this.cgroup.remove();
      if (this.scratch) {
        await unmountWorkspace(this.scratch.workspace);
        await removeTree(this.scratch.dir, this.host.runDir);
      }
    }
    // Only now: a run whose group could not be removed may still hold processes of that id.
    releaseHostId(this.hostId);
  }
}

/** The supervisor's own audit session: the shim's fresh one differs from it once written. */
const SUPERVISOR_SESSION = auditSession(process.pid);

const round = (ms: number) => Math.round(ms * 10) / 10;

/** How long a killed run's end may take before its verdict is given without it. */
const KILL_GRACE_MS = 10_000;
/** A timer that never holds the process open. */
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
