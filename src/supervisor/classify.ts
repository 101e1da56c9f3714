// The one place that decides a run's status and error kind from what was observed. Order
// matters: the kernel's own evidence (OOM kill, pids refusals, SIGSYS) outranks what the
// program said, and a watchdog's kill outranks the exit status it caused.
import type { Policy } from '../config/policy.js';
import type { HarnessReply, SerializedError } from '../task/protocol.js';
import type { RunError, RunResult } from './result.js';

export type KillReason = 'wall' | 'cpu' | 'pids' | 'disk' | 'output' | 'cancelled';

export interface RunFacts {
  mode: 'task' | 'program';
  policy: Policy;
  killReason: KillReason | null;
  /** The runtime process's exit: bwrap reports a signal-killed child as 128+N. */
  exitCode: number | null;
  signal: string | null;
  shimFailed: boolean;
  oomKills: number;
  pidsLimitHits: number;
  stderr: string;
  reply: HarnessReply | null;
  /** The reply could not be used (too large, not JSON). */
  replyProblem: string | null;
  /** Output schema problems, when the task returned. */
  outputErrors: string[];
  /** Seccomp kill, as found by the seccomp layer. */
  seccomp: { syscall: string | null } | null;
  /** Final figures, read after the end: a limit crossed after the last poll still counts. */
  cpuMs: number;
  /** Infinity when the workspace could not be measured (that counts as over the limit). */
  workspaceBytes: number;
  /**
   * /workspace's own filesystem was out of blocks or inodes (statfs at a poll or after the run:
   * the kernel's limit). It decides only a run that failed: a task that met ENOSPC and coped, succeeded.
   */
  workspaceFull?: boolean;
}

type Verdict = Pick<RunResult, 'status' | 'output' | 'error' | 'exit_code' | 'signal'>;

const SIGNALS: Record<number, string> = { 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ', 31: 'SIGSYS' };

/** The sandboxed program's end as exit code or signal name (128+N from the runtime = signal N). */
export function programExit(exitCode: number | null, signal: string | null): { exit_code: number | null; signal: string | null } {
  if (signal) return { exit_code: null, signal };
  if (exitCode !== null && exitCode > 128 && exitCode <= 128 + 64) return { exit_code: null, signal: SIGNALS[exitCode - 128] ?? `SIG${exitCode - 128}` };
  return { exit_code: exitCode, signal: null };
}

const FS_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);
const NET_CODES = new Set(['ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNREFUSED', 'EHOSTUNREACH']);
const HEAP_OOM = /JavaScript heap out of memory|Reached heap limit|FATAL ERROR: .*Allocation failed/;

export function classify(f: RunFacts): Verdict {
  const exit = programExit(f.exitCode, f.signal);
  const r = f.policy.resources;
  const failed = (error: RunError): Verdict => ({ status: 'failed', error, ...exit });

  if (f.killReason === 'cancelled') return failed({ kind: 'Cancelled', message: 'the run was cancelled' });
  if (f.shimFailed) return failed({ kind: 'RuntimeError', message: lastLines(f.stderr) || 'the sandbox could not enter its cgroup' });
  if (f.oomKills > 0 || (exit.signal === 'SIGABRT' || exit.signal === 'SIGTRAP' || f.reply === null) && HEAP_OOM.test(f.stderr)) {
    return failed({ kind: 'ResourceExhausted', resource: 'memory', limit_value: r.memory, message: `memory limit of ${r.memory} bytes reached${f.oomKills > 0 ? ' (killed by the kernel OOM killer)' : ' (JavaScript heap exhausted)'}` });
  }
  if (f.killReason === 'output') return failed({ kind: 'ResourceExhausted', resource: 'output', message: f.replyProblem ?? 'result too large' });
  if (f.killReason === 'pids' || f.pidsLimitHits > 0) {
    return failed({ kind: 'ResourceExhausted', resource: 'pids', limit_value: r.processes, message: `process limit reached (${r.processes} processes; fork/clone refused by the pids controller)` });
  }
  const gaveUp = f.mode === 'program' ? exit.exit_code !== 0 : !f.reply?.ok;
  if (f.killReason === 'disk' || exit.signal === 'SIGXFSZ' || f.workspaceBytes > r.diskSpace || (f.workspaceFull && gaveUp)) {
    const how = Number.isFinite(f.workspaceBytes) ? 'reached' : 'could not be checked (the workspace could not be measured)';
    return failed({ kind: 'ResourceExhausted', resource: 'disk', limit_value: r.diskSpace, message: `disk space limit of ${r.diskSpace} bytes ${how} in /workspace` });
  }
  if (f.killReason === 'wall') return failed({ kind: 'Timeout', limit: 'wall', limit_value: r.wallTime, message: `wall time limit of ${r.wallTime} ms reached` });
  if (f.killReason === 'cpu' || exit.signal === 'SIGXCPU' || f.cpuMs > r.cpuTime) return failed({ kind: 'Timeout', limit: 'cpu', limit_value: r.cpuTime, message: `CPU time limit of ${r.cpuTime} ms reached` });
  if (f.seccomp || exit.signal === 'SIGSYS') {
    const syscall = f.seccomp?.syscall ?? null;
    return failed({ kind: 'SecurityViolation', syscall, message: `killed by the seccomp filter for a blocked system call${syscall ? `: ${syscall}` : ''}` });
  }
  if (f.mode === 'program') {
    if (isRuntimeFailure(f)) return failed({ kind: 'RuntimeError', message: lastLines(f.stderr) });
    if (exit.exit_code === 0) return { status: 'succeeded', ...exit };
    return failed({ kind: 'TaskError', message: exit.signal ? `the program was killed by ${exit.signal}` : `the program exited with status ${exit.exit_code}` });
  }
  if (f.replyProblem) return failed({ kind: 'InvalidOutput', message: f.replyProblem });
  if (!f.reply) {
    if (isRuntimeFailure(f)) return failed({ kind: 'RuntimeError', message: lastLines(f.stderr) });
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.exit_code}`;
    return failed({ kind: 'TaskError', message: `the task process ${how} without returning a result${f.stderr ? `: ${lastLines(f.stderr)}` : ''}` });
  }
  if (f.reply.ok) {
    if (f.outputErrors.length) return failed({ kind: 'InvalidOutput', message: 'the task output does not match output.schema.json', details: f.outputErrors });
    return { status: 'succeeded', output: f.reply.output, ...exit };
  }
  return failed(taskError(f.reply.stage, f.reply.error, f.policy, f.reply.violations.some((v) => v.kind === 'network')));
}

function taskError(stage: 'load' | 'run' | 'output', e: SerializedError, policy: Policy, networkBlocked: boolean): RunError {
  const base = { name: e.name, ...(e.stack ? { stack: e.stack } : {}) };
  if (stage === 'output') return { kind: 'InvalidOutput', message: e.message };
  if (e.code === 'EMFILE' || e.code === 'ENFILE') {
    return { ...base, kind: 'ResourceExhausted', resource: 'fds', limit_value: policy.resources.fileDescriptors, message: `file descriptor limit of ${policy.resources.fileDescriptors} reached: ${e.message}` };
  }
  if (e.code === 'EFBIG' || e.code === 'ENOSPC' || e.code === 'EDQUOT') {
    return { ...base, kind: 'ResourceExhausted', resource: 'disk', limit_value: policy.resources.diskSpace, message: `disk space limit reached: ${e.message}` };
  }
  if (e.code === 'EPERM' && !e.path && e.syscall) {
    return { ...base, kind: 'SecurityViolation', syscall: e.syscall, message: `a system call was refused: ${e.message}` };
  }
  if (e.code && FS_CODES.has(e.code)) return { ...base, kind: 'FileSystemBlocked', message: e.message };
  if ((e.name === 'NetworkError' && networkBlocked) || (e.code && NET_CODES.has(e.code) && policy.network.mode !== 'full')) {
    return { ...base, kind: 'NetworkBlocked', message: e.message };
  }
  return { ...base, kind: 'TaskError', message: stage === 'load' ? `the task failed to load: ${e.message}` : e.message };
}

// bwrap reports its own set-up failures as "bwrap: ..." and exit status 1.
function isRuntimeFailure(f: RunFacts): boolean {
  return f.exitCode === 1 && /^bwrap: /m.test(f.stderr);
}

function lastLines(text: string, n = 5): string {
  return text.trim().split('\n').slice(-n).join('\n');
}
