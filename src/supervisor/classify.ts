// The one place that decides a run's status and error kind. The kind comes from facts the task
// cannot forge, checked in a fixed order (README "How a verdict is decided"): the supervisor's own
// kills and clocks, the runtime's set-up record, cgroup counters, kernel audit records. Only when
// none applies does the task's own account (its reply, exit status, stderr) decide, and then
// only where it agrees with what the supervisor knows of the sandbox; otherwise it is TaskError.
import type { Policy } from '../config/policy.js';
import type { HarnessReply, SerializedError } from '../task/protocol.js';
import type { RunError, RunResult } from './result.js';
import { signalName } from '../util/signals.js';

export type KillReason = 'wall' | 'cpu' | 'pids' | 'disk' | 'output' | 'memory' | 'cancelled';

export interface RunFacts {
  mode: 'task' | 'program';
  policy: Policy;
  /** Why the supervisor itself ended the run (its timers and watch), or null. */
  killReason: KillReason | null;
  /** The runtime process's exit: bwrap reports a signal-killed child as 128+N (which any program can also exit with). */
  exitCode: number | null;
  /** A signal the supervisor saw in waitpid() itself (OCI: the container's init): a kernel fact. */
  signal: string | null;
  /**
   * The runtime never finished setting the sandbox up, so none of the task's code ran: bwrap did
   * not consume its block file (runtime/bwrap/), an OCI runtime's create or start failed. Its stderr
   * is then the runtime's own words.
   */
  setupFailed: boolean;
  /** The runtime's own account of a failed set-up where its stderr does not carry it (OCI: its log). */
  setupError?: string | null;
  oomKills: number;
  pidsLimitHits: number;
  stderr: string;
  reply: HarnessReply | null;
  /** The reply could not be used (too large, not JSON). */
  replyProblem: string | null;
  /** Seccomp kills of any process of the run, from the kernel's audit records (syscall null: unknown). */
  seccompKills: { syscall: string | null }[];
  /** The run's seccomp filter answers this call with EPERM (null: no filter). */
  refusesWithEperm: ((syscall: string) => boolean) | null;
  /** Final figures, read after the end: a limit crossed after the last poll still counts. */
  cpuMs: number;
  /** Infinity when the workspace could not be measured (that counts as over the limit). */
  workspaceBytes: number;
  /** Restricted network: requests the supervisor's egress proxy refused ("host:port (reason)"). */
  proxyDenials?: string[];
  /**
   * /workspace's own filesystem was out of blocks or inodes (statfs at a poll or after the run:
   * the kernel's limit). It decides only a run that failed: a task that met ENOSPC and coped, succeeded.
   */
  workspaceFull?: boolean;
}

type Verdict = Pick<RunResult, 'status' | 'output' | 'error' | 'exit_code' | 'signal'>;

/** The sandboxed program's end as exit code or signal name (128+N from the runtime = signal N). For display only. */
export function programExit(exitCode: number | null, signal: string | null): { exit_code: number | null; signal: string | null } {
  if (signal) return { exit_code: null, signal };
  if (exitCode !== null && exitCode > 128 && exitCode <= 128 + 64) return { exit_code: null, signal: signalName(exitCode - 128) };
  return { exit_code: exitCode, signal: null };
}

const FS_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);
const NET_CODES = new Set(['ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNREFUSED', 'EHOSTUNREACH']);
const HEAP_OOM = /JavaScript heap out of memory|Reached heap limit|FATAL ERROR: .*Allocation failed/;

export function classify(f: RunFacts): Verdict {
  const exit = programExit(f.exitCode, f.signal);
  const r = f.policy.resources;
  const failed = (error: RunError): Verdict => ({ status: 'failed', error, ...exit });

  // 1. The supervisor's own decisions and records.
  if (f.killReason === 'cancelled') return failed({ kind: 'Cancelled', message: 'the run was cancelled' });
  if (f.setupFailed && f.killReason === null && f.oomKills === 0) {
    return failed({ kind: 'RuntimeError', message: f.setupError || lastLines(f.stderr) || 'the sandbox could not be set up' });
  }
  // 2. The kernel's audit record of a seccomp kill, of any process of the run. At a level whose
  // filter kills, the first blocked call ends the run's promise, even if the main process replied.
  // (A SIGSYS alone proves nothing: a process may send it to itself, and 159 is just an exit status.)
  // Above every limit below: each is one the task can hit on purpose (fill /workspace, write too
  // much, spin), which would otherwise choose its verdict for it and hide the blocked call.
  if (f.seccompKills.length > 0) {
    const syscall = f.seccompKills.find((k) => k.syscall)?.syscall ?? null;
    return failed({ kind: 'SecurityViolation', syscall, message: `killed by the seccomp filter for a blocked system call${syscall ? `: ${syscall}` : ''}` });
  }
  // 3. Kernel counters of the run's cgroup, and the supervisor's watch and clocks.
  if (f.oomKills > 0 || f.killReason === 'memory') {
    return failed({ kind: 'ResourceExhausted', resource: 'memory', limit_value: r.memory, message: `memory limit of ${r.memory} bytes reached (killed by the kernel OOM killer)` });
  }
  if (f.killReason === 'output') return failed({ kind: 'ResourceExhausted', resource: 'output', message: f.replyProblem ?? 'result too large' });
  if (f.killReason === 'pids' || f.pidsLimitHits > 0) {
    return failed({ kind: 'ResourceExhausted', resource: 'pids', limit_value: r.processes, message: `process limit reached (${r.processes} processes; fork/clone refused by the pids controller)` });
  }
  const gaveUp = f.mode === 'program' ? exit.exit_code !== 0 : !f.reply?.ok;
  // A full /workspace decides a run that gave up, not one the supervisor ended on a clock: a task
  // that filled it, coped, and then spun until the timer is a Timeout.
  if (f.killReason === 'disk' || f.workspaceBytes > r.diskSpace || (f.workspaceFull && gaveUp && f.killReason === null)) {
    const how = Number.isFinite(f.workspaceBytes) ? 'reached' : 'could not be checked (the workspace could not be measured)';
    return failed({ kind: 'ResourceExhausted', resource: 'disk', limit_value: r.diskSpace, message: `disk space limit of ${r.diskSpace} bytes ${how} in /workspace` });
  }
  if (f.killReason === 'wall') return failed({ kind: 'Timeout', limit: 'wall', limit_value: r.wallTime, message: `wall time limit of ${r.wallTime} ms reached` });
  // RLIMIT_CPU (SIGXCPU) sits above the cgroup's own CPU limit, so a real SIGXCPU always shows here.
  if (f.killReason === 'cpu' || f.cpuMs > r.cpuTime) return failed({ kind: 'Timeout', limit: 'cpu', limit_value: r.cpuTime, message: `CPU time limit of ${r.cpuTime} ms reached` });
  // 4. The task's own account: only a refinement of TaskError where the facts agree.
  if (f.mode === 'program' || !f.reply) {
    if (f.replyProblem) return failed({ kind: 'InvalidOutput', message: f.replyProblem });
    if (f.mode === 'program' && exit.exit_code === 0 && !f.signal) return { status: 'succeeded', ...exit };
    if (f.mode === 'program' && f.proxyDenials?.length) return failed({ kind: 'NetworkBlocked', message: `the program failed after the egress proxy denied ${f.proxyDenials[0]}` });
    if (heapExhausted(f)) {
      return failed({ kind: 'ResourceExhausted', resource: 'memory', limit_value: r.memory, message: `memory limit of ${r.memory} bytes reached (JavaScript heap exhausted, as node reported)` });
    }
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.exit_code}`;
    const subject = f.mode === 'program' ? 'the program' : 'the task process';
    const tail = f.mode === 'task' && f.stderr ? `: ${lastLines(f.stderr)}` : '';
    return failed({ kind: 'TaskError', message: `${subject} ${how}${f.mode === 'task' ? ' without returning a result' : ''}${tail}` });
  }
  if (f.replyProblem) return failed({ kind: 'InvalidOutput', message: f.replyProblem });
  if (f.reply.ok) {
    return { status: 'succeeded', output: f.reply.output, ...exit };
  }
  const verdict = taskError(f.reply.stage, f.reply.error, f);
  // A task that failed after the proxy refused it failed on the network (the proxy's word, not the task's).
  if (verdict.kind === 'TaskError' && f.reply.stage === 'run' && f.proxyDenials?.length) {
    return failed({ ...verdict, kind: 'NetworkBlocked', message: `${verdict.message} (the egress proxy denied ${f.proxyDenials[0]})` });
  }
  return failed(verdict);
}

/**
 * A JavaScript heap exhaustion is a real V8 limit that leaves no kernel record: its only evidence
 * is node's fatal message and its abort (exit 134 through bwrap), both of which a task could fake.
 * It is believed only where faking it gains nothing: no fact above applies (it can never hide a
 * timeout, OOM kill or other limit), no reply came, and the process ended as node's fatal OOM
 * does (SIGABRT or SIGTRAP, as a signal or 128+N). At worst a task relabels its own failure.
 */
function heapExhausted(f: RunFacts): boolean {
  const sig = programExit(f.exitCode, f.signal).signal;
  return (sig === 'SIGABRT' || sig === 'SIGTRAP') && HEAP_OOM.test(lastLines(f.stderr, 20));
}

/**
 * What the task said it failed on. A task can always really attempt what it claims (and get the
 * same verdict honestly), so its account may name the kind, but never one the sandbox could not
 * have caused: NetworkBlocked only when the policy really blocks the network, SecurityViolation
 * only for a call this run's filter answers with EPERM. Anything else is TaskError.
 */
function taskError(stage: 'load' | 'run' | 'output', e: SerializedError, f: RunFacts): RunError {
  const { policy } = f;
  const base = { name: e.name, ...(e.stack ? { stack: e.stack } : {}) };
  if (stage === 'output') return { kind: 'InvalidOutput', message: e.message };
  // The harness could not tell which function of the file is the task (ambiguous or none).
  if (stage === 'load' && e.name === 'InvalidTask') return { kind: 'InvalidTask', message: e.message };
  if (e.code === 'EMFILE' || e.code === 'ENFILE') {
    return { ...base, kind: 'ResourceExhausted', resource: 'fds', limit_value: policy.resources.fileDescriptors, message: `file descriptor limit of ${policy.resources.fileDescriptors} reached: ${e.message}` };
  }
  if (e.code === 'EFBIG' || e.code === 'ENOSPC' || e.code === 'EDQUOT') {
    return { ...base, kind: 'ResourceExhausted', resource: 'disk', limit_value: policy.resources.diskSpace, message: `disk space limit reached: ${e.message}` };
  }
  if (e.code === 'EPERM' && !e.path && e.syscall && f.refusesWithEperm?.(e.syscall)) {
    return { ...base, kind: 'SecurityViolation', syscall: e.syscall, message: `a system call was refused: ${e.message}` };
  }
  if (e.code && FS_CODES.has(e.code) && (e.code !== 'EPERM' || e.path)) return { ...base, kind: 'FileSystemBlocked', message: e.message };
  // With no network at all any network failure was the sandbox's doing; in restricted mode a
  // network error (a NetworkError or an errno: ECONNREFUSED is also an allowed host's own answer)
  // may be an allowed host's own failure, so it needs the proxy's own refusal.
  const mode = policy.network.mode;
  const refused = mode === 'none' || (mode === 'restricted' && !!f.proxyDenials?.length);
  if (refused && (e.name === 'NetworkError' || (e.code && NET_CODES.has(e.code)))) {
    return { ...base, kind: 'NetworkBlocked', message: e.message };
  }
  return { ...base, kind: 'TaskError', message: stage === 'load' ? `the task failed to load: ${e.message}` : e.message };
}

function lastLines(text: string, n = 5): string {
  return text.trim().split('\n').slice(-n).join('\n');
}
