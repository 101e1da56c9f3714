// Reuse mode (README "Reuse mode"): several runs of ONE task under ONE policy in one sandbox, one
// run at a time, each in a fresh node:vm context inside the harness (a fresh worker thread per run
// measured 70-100 ms on this host, a fresh context 3 ms: a worker would cost what a new sandbox
// does). Only for the trusted and system levels: runs share a process, /tmp and /workspace.
// Each run gets exactly one result, with its usage as deltas of the sandbox's cgroup counters; a
// run that times out, runs out of CPU time, memory or processes, or kills the harness ends the
// sandbox (its result is the sandbox's own verdict) and the next run gets a fresh one.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { CgroupStats } from '../cgroup/types.js';
import type { HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { factsCache } from '../hostfacts/cache.js';
import { seccompPlan } from '../seccomp/index.js';
import { classify, type KillReason } from '../supervisor/classify.js';
import type { RunResult } from '../supervisor/result.js';
import { checkOutput, taskRequest } from '../supervisor/run.js';
import { proxyViolations, round } from '../supervisor/phases/report.js';
import type { ReuseHandle, Sandbox } from '../supervisor/sandbox.js';
import type { LoadedTask } from '../task/load.js';
import type { HarnessReply } from '../task/protocol.js';
import { checkReply } from '../task/reply.js';
import type { HttpMock } from '../task/testcase.js';

const REUSE_LEVELS: readonly string[] = ['trusted', 'system'];
/** A reply line larger than this ends the sandbox (ResourceExhausted/output), as in single use. */
const LINE_MAX = 16 * 1024 * 1024;

/** Reuse mode gives up isolation between runs: refused below trusted, by name. */
export function assertReusable(policy: Policy): void {
  if (!REUSE_LEVELS.includes(policy.trustLevel)) {
    throw new PawlError('InvalidPolicy', `reuse mode is only for the trusted and system trust levels (its runs share one sandbox); this run's trust level is ${policy.trustLevel}`);
  }
}

/**
 * The policy a reuse sandbox starts with: the run's, with the CPU time of maxRuns runs (the
 * cgroup counter and RLIMIT_CPU are the sandbox's whole life; each run is held to its own
 * cpuTime by the session).
 */
export function reusePolicy(policy: Policy, maxRuns: number): Policy {
  return { ...policy, resources: { ...policy.resources, cpuTime: policy.resources.cpuTime * maxRuns } };
}

/** Only runs of the same task share a sandbox: its source, file name and entry point. */
export function taskKey(loaded: LoadedTask): string {
  return createHash('sha256').update(JSON.stringify([loaded.source, loaded.filename, loaded.entry ?? null])).digest('hex').slice(0, 32);
}

const ReuseLine = z.object({
  run: z.number().int(),
  reply: z.unknown(),
  stdout: z.string(),
  stderr: z.string(),
  stdoutDropped: z.number().int().min(0),
  stderrDropped: z.number().int().min(0),
});

/** Which verdicts leave the sandbox in a state no next run should inherit. */
const ENDS_SANDBOX = new Set(['Timeout', 'ResourceExhausted', 'SecurityViolation']);

export class ReuseSession {
  runs = 0;
  /** The sandbox was reaped (a run ended it, or end() did). */
  reaped = false;
  /** The sandbox's pipes, once its harness has booted (Sandbox.reuseHandle). */
  private readonly handle: Promise<ReuseHandle>;
  private h!: ReuseHandle;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private lines: string[] = [];
  private wake: (() => void) | null = null;
  private overflow = false;
  /** A run's request is out and its reply not yet taken: only then may the harness write fd 4. */
  private inRun = false;
  private linesBytes = 0;

  constructor(readonly sb: Sandbox, private readonly host: HostConfig) {
    this.handle = sb.reuseHandle().then((h) => {
      h.reply.on('data', (b: Buffer) => this.onData(b));
      return (this.h = h);
    });
    this.handle.catch(() => {}); // the first run reports it
  }

  private onData(b: Buffer): void {
    if (this.overflow) return;
    // Between runs the harness writes nothing: bytes then come from what a run left behind (a
    // worker thread, a child holding fd 4), and would pile up here while the sandbox is parked
    // (measured: 30 lines of 8 MB took the supervisor's heap from 25 to 253 MB). The sandbox ends.
    if (!this.inRun) return this.fault();
    let start = 0;
    for (let nl = b.indexOf(10); nl >= 0; nl = b.indexOf(10, start)) {
      this.buffered.push(b.subarray(start, nl));
      this.linesBytes += this.bufferedBytes + nl - start;
      this.lines.push(Buffer.concat(this.buffered).toString('utf8'));
      this.buffered = [];
      this.bufferedBytes = 0;
      start = nl + 1;
    }
    if (start < b.length) {
      this.buffered.push(b.subarray(start));
      this.bufferedBytes += b.length - start;
    }
    // One run's lines together, as one line: at most LINE_MAX held.
    if (this.bufferedBytes + this.linesBytes > LINE_MAX) return this.fault();
    this.wake?.();
  }

  /** No further run may be given to this sandbox (it was ended, or fd 4 was written out of turn). */
  get spoiled(): boolean {
    return this.reaped || this.overflow;
  }

  /** fd 4 was written outside the protocol's bounds: nothing more is held, and the sandbox ends. */
  private fault(): void {
    if (this.overflow) return;
    this.overflow = true;
    this.lines = [];
    this.buffered = [];
    this.bufferedBytes = this.linesBytes = 0;
    void this.sb.kill('output');
    this.wake?.();
  }

  private async nextLine(ended: Promise<unknown>): Promise<string | null> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      let gone = false;
      await Promise.race([new Promise<void>((r) => (this.wake = r)), ended.then(() => (gone = true))]);
      this.wake = null;
      if (gone && this.lines.length === 0) return null;
    }
  }

  /** One run of the task in this sandbox: its own result, whatever happens. */
  async run(loaded: LoadedTask, policy: Policy, input: unknown, context?: Record<string, unknown>, mocks?: HttpMock[]): Promise<RunResult> {
    await this.handle;
    const n = ++this.runs;
    const id = `${this.sb.id}.${n}`;
    const r = policy.resources;
    const { cgroup } = this.h;
    // Read at dispatch: what a run left running (a worker thread, a child) while the sandbox was
    // parked is nobody's usage, least of all this run's (it took a later run past its CPU limit).
    const [before, v1Peak] = await Promise.all([cgroup.readStats(), resetMemoryPeak(cgroup.version, cgroup.dirs)]);
    const egressBefore = this.h.egress();
    const peaks = { memory: before.memoryCurrentBytes, pids: before.pidsCurrent };
    let killed: KillReason | null = null;
    const kill = (reason: KillReason) => {
      killed ??= reason;
      void this.sb.kill(reason);
    };
    // Serialised first: input that cannot be (a BigInt, a cycle) throws before anything is armed.
    const request = JSON.stringify({
      ...taskRequest(loaded, { input, executionId: id, context, network: policy.network.mode, mocks }),
      ...(this.h.egressProxy ? { egressProxy: this.h.egressProxy } : {}),
      run: n,
      outputMax: { stdout: r.stdoutMax, stderr: r.stderrMax },
    });
    const t0 = performance.now();
    const wall = setTimeout(() => kill('wall'), r.wallTime);
    const poller = setInterval(() => {
      void cgroup.readStats().then((s) => {
        peaks.memory = Math.max(peaks.memory, s.memoryCurrentBytes);
        peaks.pids = Math.max(peaks.pids, s.pidsCurrent);
        if ((s.cpuUsageUs - before.cpuUsageUs) / 1000 > r.cpuTime) kill('cpu');
      }, () => {});
    }, this.host.pollIntervalMs);
    this.lines.length = 0;
    this.buffered = [];
    this.bufferedBytes = this.linesBytes = 0;
    this.inRun = true;
    let line: string | null;
    // Anything after the reply in the same read (another line, part of one): a writer the
    // protocol does not know. The reply stands; the sandbox ends rather than go to the next run.
    let trailing = false;
    try {
      this.h.request.write(`${request}\n`);
      line = await this.nextLine(this.sb.ended);
      trailing = this.lines.length > 0 || this.bufferedBytes > 0;
    } finally {
      this.inRun = false;
      clearTimeout(wall);
      clearInterval(poller);
    }
    const wallMs = performance.now() - t0;
    if (line === null || killed || this.overflow) return this.sandboxEnded(id, loaded, policy, before, wallMs);

    const after = await cgroup.readStats();
    let reply: HarnessReply | null = null;
    let replyProblem: string | null = null;
    let out = { stdout: '', stderr: '', stdoutDropped: 0, stderrDropped: 0 };
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      doc = null;
    }
    const parsed = ReuseLine.safeParse(doc);
    if (!parsed.success || parsed.data.run !== n) replyProblem = 'the harness reply was malformed or for another run (did the task write to fd 4?)';
    else {
      out = parsed.data;
      const checked = checkReply(parsed.data.reply);
      if ('problem' in checked) replyProblem = checked.problem;
      else reply = checked.reply;
    }
    const egress = this.h.egress();
    // This run's refusals: the proxy lists a sandbox's first 100 and counts them all, so a run
    // past them is told by the count (a later run's refusals were lost otherwise).
    const denials = egress ? egress.denials.slice(egressBefore?.denials.length ?? 0) : [];
    const unlisted = (egress?.deniedTotal ?? 0) - (egressBefore?.deniedTotal ?? 0) - denials.length;
    const proxyDenials = [...denials.map((d) => `${d.target} (${d.reason})`), ...(unlisted > 0 ? [`${unlisted} more request(s) (the proxy lists a sandbox's first 100)`] : [])];
    const seccomp = await seccompPlan(policy, factsCache(this.host.stateDir));
    const cpuMs = (after.cpuUsageUs - before.cpuUsageUs) / 1000;
    const verdict = classify({
      mode: 'task', policy, killReason: null, exitCode: null, signal: null, setupFailed: false,
      oomKills: after.oomKills - before.oomKills, pidsLimitHits: after.pidsLimitHits - before.pidsLimitHits,
      stderr: out.stderr, reply, replyProblem, seccompKills: [], refusesWithEperm: seccomp ? (s) => seccomp.refusesWithEperm(s) : null,
      cpuMs, workspaceBytes: 0, proxyDenials,
    });
    const cap = (text: string, max: number) => (Buffer.byteLength(text) > max ? Buffer.from(text).subarray(0, max).toString('utf8') : text);
    const result: RunResult = {
      id,
      ...verdict,
      mode: 'sandboxed',
      usage: {
        wall_ms: round(wallMs),
        cpu_ms: round(cpuMs),
        peak_memory_bytes: v1Peak ? after.memoryPeakBytes : Math.max(peaks.memory, after.memoryCurrentBytes),
        peak_pids: Math.max(peaks.pids, after.pidsCurrent),
        disk_read_bytes: after.ioReadBytes - before.ioReadBytes,
        disk_write_bytes: after.ioWriteBytes - before.ioWriteBytes,
        net_rx_bytes: policy.network.mode === 'full' ? null : (egress?.rxBytes ?? 0) - (egressBefore?.rxBytes ?? 0),
        net_tx_bytes: policy.network.mode === 'full' ? null : (egress?.txBytes ?? 0) - (egressBefore?.txBytes ?? 0),
        peak_fds: 0,
        workspace_bytes: null,
      },
      violations: [
        ...(reply?.violations ?? []).map((v) => ({ ...v, source: 'task' as const })),
        ...proxyViolations(denials, unlisted),
      ],
      stdout: cap(out.stdout, r.stdoutMax),
      stderr: cap(out.stderr, r.stderrMax),
      stdout_dropped_bytes: out.stdoutDropped + Math.max(0, Buffer.byteLength(out.stdout) - r.stdoutMax),
      stderr_dropped_bytes: out.stderrDropped + Math.max(0, Buffer.byteLength(out.stderr) - r.stderrMax),
      runtime: policy.runtime,
      cgroup: cgroup.version,
      trust_level: policy.trustLevel,
      degraded: this.h.degraded,
      not_needed: this.h.notNeeded,
      timings_ms: { prepare: 0, start: 0, run: round(wallMs), cleanup: 0 },
    };
    // A run whose limits were hit (a child OOM-killed, a refused fork) leaves nothing clean to inherit.
    // (Its teardown is the pool's to wait for: end() again.)
    if (trailing || replyProblem || (verdict.error && ENDS_SANDBOX.has(verdict.error.kind))) void this.end();
    return checkOutput(result, loaded);
  }

  /**
   * The sandbox ended during the run (the session's own clock or CPU watch, the cgroup's OOM
   * killer, the watch's pids or disk kill, the harness died): the run's result is the sandbox's
   * verdict, with this run's id and its usage as deltas where the sandbox's are totals.
   */
  private async sandboxEnded(id: string, loaded: LoadedTask, policy: Policy, before: CgroupStats, wallMs: number): Promise<RunResult> {
    this.reaped = true;
    // As soon as the verdict is final; the pool waits for the teardown (end()).
    const res = (await this.sb.settled()).result;
    const error = res.error?.kind === 'Timeout' && res.error.limit === 'cpu'
      ? { ...res.error, limit_value: policy.resources.cpuTime, message: `CPU time limit of ${policy.resources.cpuTime} ms reached` }
      : res.error;
    return checkOutput({
      ...res,
      id,
      ...(error ? { error } : {}),
      usage: { ...res.usage, wall_ms: round(wallMs), cpu_ms: round(Math.max(0, res.usage.cpu_ms - before.cpuUsageUs / 1000)) },
      timings_ms: { ...res.timings_ms, prepare: 0, start: 0, run: round(wallMs) },
    }, loaded);
  }

  /**
   * End the sandbox (max runs reached, pool closing, a run that ended it): reaped like any run.
   * Settles once its teardown has, with what stayed behind (its cleanup_error), or null.
   */
  async end(): Promise<string | null> {
    if (!this.reaped) {
      this.reaped = true;
      void this.handle.then((h) => h.request.end(), () => {});
      await this.sb.kill('cancelled').catch(() => {});
    }
    return (await this.sb.result().catch(() => null))?.cleanup_error ?? null;
  }
}

/**
 * cgroup v1 resets memory.max_usage_in_bytes to the current usage on a write of 0: the read after
 * the run is then this run's peak (the harness's own memory included). v2's memory.peak resets
 * only per open file (kernel 6.12+): there the peak is the largest usage polled during the run.
 */
async function resetMemoryPeak(version: 'v1' | 'v2', dirs: readonly string[]): Promise<boolean> {
  const dir = version === 'v1' ? dirs.find((d) => /\/memory(,[^/]*)?\//.test(d)) : undefined;
  if (!dir) return false;
  // The TCP buffers' peak too: the run's peak counts them (cgroup/v1/memory.ts); a kernel without it: no matter.
  await writeFile(join(dir, 'memory.kmem.tcp.max_usage_in_bytes'), '0').catch(() => {});
  return writeFile(join(dir, 'memory.max_usage_in_bytes'), '0').then(() => true, () => false);
}

