// The run result: the product's face. One schema, documented field by field in the README; one
// place (classify.ts) decides the status and error kind, so a timeout, an OOM kill, a seccomp kill
// and a crash never look alike.
import { z } from 'zod';
import { CgroupVersion } from '../cgroup/types.js';
import { RuntimeName } from '../config/policy.js';
import { ViolationKind } from '../task/reply.js';

export const ErrorKind = z.enum([
  'Timeout',
  'ResourceExhausted',
  'SecurityViolation',
  'NetworkBlocked',
  'FileSystemBlocked',
  'TaskError',
  'InvalidTask',
  'InvalidInput',
  'InvalidOutput',
  'Cancelled',
  'RuntimeError',
]);
export type ErrorKind = z.infer<typeof ErrorKind>;

export const Resource = z.enum(['memory', 'pids', 'cpu', 'disk', 'output', 'fds']);
export type Resource = z.infer<typeof Resource>;

export const RunError = z.object({
  kind: ErrorKind,
  message: z.string(),
  /** ResourceExhausted: which limit. */
  resource: Resource.optional(),
  /** Timeout: which clock ran out. */
  limit: z.enum(['wall', 'cpu']).optional(),
  /** The limit's value (bytes, tasks, ms) for ResourceExhausted and Timeout. */
  limit_value: z.number().optional(),
  /** SecurityViolation: the blocked syscall, when known. */
  syscall: z.string().nullable().optional(),
  /** TaskError: the thrown error's name, and a trimmed stack. */
  name: z.string().optional(),
  stack: z.string().optional(),
  /** InvalidInput/InvalidOutput: JSON Schema errors, one line each. */
  details: z.array(z.string()).optional(),
});
export type RunError = z.infer<typeof RunError>;

export const Violation = z.object({
  kind: ViolationKind,
  detail: z.string(),
  /** Who says so: the supervisor (a kernel record, its own proxy) or the task's own report (unverified). */
  source: z.enum(['supervisor', 'task']).optional(),
});

export const Usage = z.object({
  wall_ms: z.number(),
  cpu_ms: z.number(),
  peak_memory_bytes: z.number(),
  /** Peak tasks in the cgroup: threads count, as the pids controller counts them. */
  peak_pids: z.number(),
  disk_read_bytes: z.number(),
  disk_write_bytes: z.number(),
  /** null when the sandbox has no network of its own to count (mode full shares the host's). */
  net_rx_bytes: z.number().nullable(),
  net_tx_bytes: z.number().nullable(),
  peak_fds: z.number(),
  /** null when the workspace could not be measured (the run then failed as disk). */
  workspace_bytes: z.number().nullable(),
});
export type Usage = z.infer<typeof Usage>;

export const RunResult = z.object({
  id: z.string(),
  status: z.enum(['succeeded', 'failed']),
  /** The task's return value (tasks) when succeeded. */
  output: z.unknown().optional(),
  error: RunError.optional(),
  /** Programs (pawl exec): how the program ended. */
  exit_code: z.number().nullable(),
  signal: z.string().nullable(),
  usage: Usage,
  violations: z.array(Violation),
  /** Captured stdout/stderr (tasks) up to the caps; *_dropped_bytes counts what was cut. */
  stdout: z.string(),
  stderr: z.string(),
  stdout_dropped_bytes: z.number(),
  stderr_dropped_bytes: z.number(),
  /** "none": a legacy run, in-process without a sandbox (src/modes/legacy.ts). */
  runtime: z.enum([...RuntimeName.options, 'none']),
  cgroup: z.enum([...CgroupVersion.options, 'none']),
  /** How the run was executed (src/modes): in a sandbox, or in-process (legacy, unsafe). */
  mode: z.enum(['sandboxed', 'legacy']),
  trust_level: z.enum(['untrusted', 'limited', 'trusted', 'system']),
  /** Protections this host could not apply that the policy allowed to skip. */
  degraded: z.array(z.string()),
  /** The run's cgroup or scratch dir could not be removed (it is on the leftover list gc retries). */
  cleanup_error: z.string().optional(),
  /** Limits with nothing to act on, and why (e.g. disk rates for a run dir on tmpfs: its writes are memory). */
  not_needed: z.array(z.string()),
  timings_ms: z.object({ prepare: z.number(), start: z.number(), run: z.number(), cleanup: z.number() }),
});
export type RunResult = z.infer<typeof RunResult>;
