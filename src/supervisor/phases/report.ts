// The report phase: the one builder of a RunResult, for every outcome (a finished run, a run
// whose sandbox could not be set up, input rejected before any sandbox). Fields a run did not
// get to have their zero values, so every result has the same shape.
import type { Policy } from '../../config/policy.js';
import type { RunResult, Usage } from '../result.js';
import type { EndFacts } from './reap.js';

type Verdict = Pick<RunResult, 'status' | 'output' | 'error' | 'exit_code' | 'signal'>;
type Violation = RunResult['violations'][number];

export interface ResultParts {
  id: string;
  policy: Policy;
  /** The host's cgroup version (the real one, whether or not a sandbox ran). */
  cgroup: RunResult['cgroup'];
  verdict: Verdict;
  usage?: Partial<Usage>;
  violations?: Violation[];
  stdout?: string;
  stderr?: string;
  stdoutDropped?: number;
  stderrDropped?: number;
  degraded?: string[];
  notNeeded?: string[];
  cleanupError?: string | null;
  timings?: Partial<RunResult['timings_ms']>;
}

const NO_USAGE: Usage = { wall_ms: 0, cpu_ms: 0, peak_memory_bytes: 0, peak_pids: 0, disk_read_bytes: 0, disk_write_bytes: 0, net_rx_bytes: 0, net_tx_bytes: 0, peak_fds: 0, workspace_bytes: 0 };

export function runResult(p: ResultParts): RunResult {
  return {
    id: p.id,
    ...p.verdict,
    usage: { ...NO_USAGE, ...p.usage },
    violations: p.violations ?? [],
    stdout: p.stdout ?? '',
    stderr: p.stderr ?? '',
    stdout_dropped_bytes: p.stdoutDropped ?? 0,
    stderr_dropped_bytes: p.stderrDropped ?? 0,
    runtime: p.policy.runtime,
    cgroup: p.cgroup,
    mode: 'sandboxed',
    trust_level: p.policy.trustLevel,
    degraded: p.degraded ?? [],
    ...(p.cleanupError ? { cleanup_error: p.cleanupError } : {}),
    not_needed: p.notNeeded ?? [],
    timings_ms: { prepare: 0, start: 0, run: 0, cleanup: 0, ...p.timings },
  };
}

/** What the task reported is its account; what the kernel recorded and the proxy refused are the supervisor's. */
export function violationsOf(end: EndFacts): Violation[] {
  const denials = end.egress?.denials ?? [];
  return [
    ...(end.reply?.violations ?? []).map((v) => ({ ...v, source: 'task' as const })),
    ...end.seccompKills.map((k) => ({ kind: 'syscall' as const, detail: k.syscall ?? 'unknown system call (SIGSYS)', source: 'supervisor' as const })),
    ...proxyViolations(denials, (end.egress?.deniedTotal ?? 0) - denials.length),
  ];
}

/**
 * The proxy's refusals of a run as violations: each one its list holds (a sandbox's first 100),
 * then how many more it counted.
 */
export function proxyViolations(listed: readonly { target: string; reason: string }[], more: number): Violation[] {
  return [
    ...listed.map((d) => ({ kind: 'network' as const, detail: `egress proxy denied ${d.target}: ${d.reason}`, source: 'supervisor' as const })),
    ...(more > 0 ? [{ kind: 'network' as const, detail: `egress proxy denied ${more} more request(s)`, source: 'supervisor' as const }] : []),
  ];
}

/** The run's usage from its final figures and the watch's peaks. */
export function usageOf(end: EndFacts, policy: Policy, peaks: { memoryBytes: number; pids: number; fds: number }, wallMs: number): Usage {
  const s = end.stats;
  // full: the host's namespace has no per-run counters (null); restricted: the proxy's counts.
  const full = policy.network.mode === 'full';
  return {
    wall_ms: round(wallMs),
    cpu_ms: round((s?.cpuUsageUs ?? 0) / 1000),
    peak_memory_bytes: peaks.memoryBytes,
    peak_pids: peaks.pids,
    disk_read_bytes: s?.ioReadBytes ?? 0,
    disk_write_bytes: s?.ioWriteBytes ?? 0,
    net_rx_bytes: full ? null : end.egress?.rxBytes ?? 0,
    net_tx_bytes: full ? null : end.egress?.txBytes ?? 0,
    peak_fds: peaks.fds,
    workspace_bytes: Number.isFinite(end.workspaceBytes) ? end.workspaceBytes : null,
  };
}

export const round = (ms: number) => Math.round(ms * 10) / 10;
