// The library's front door: run a Ratchet task or any program in a fresh sandbox.
import type { Writable } from 'node:stream';
import type { HostConfig } from '../config/host.js';
import type { Policy, PolicyInput } from '../config/policy.js';
import { resolvePolicy } from '../config/resolve.js';
import { loadTask, type LoadedTask } from '../task/load.js';
import { schemaErrors } from '../task/validate.js';
import { assertSupported } from './host.js';
import { newRunId } from './ids.js';
import type { RunResult } from './result.js';
import { Sandbox } from './sandbox.js';

export interface RunTaskOptions {
  input?: unknown;
  trustLevel?: string;
  /** Per-run overrides, laid over the trust level and the task's own policy. */
  policy?: PolicyInput;
  host?: HostConfig;
  signal?: AbortSignal;
  /** Extra fields for the task's context (executionId is always set). */
  context?: Record<string, unknown>;
}

/** The effective policy of a task run: defaults <- trust level <- task policy <- overrides. */
export function taskPolicy(task: LoadedTask, opts: Pick<RunTaskOptions, 'trustLevel' | 'policy'>): Policy {
  return resolvePolicy({ trustLevel: opts.trustLevel, task: task.policy, overrides: opts.policy });
}

/** Run a task (a directory or .js file, or an already loaded task). Throws PawlError when pawl cannot run it. */
export async function runTask(task: string | LoadedTask, opts: RunTaskOptions = {}): Promise<RunResult> {
  const loaded = typeof task === 'string' ? await loadTask(task) : task;
  const policy = taskPolicy(loaded, opts);
  assertSupported(policy);
  const input = opts.input ?? {};
  const inputErrors = schemaErrors(loaded.inputSchema, input, 'input');
  if (inputErrors.length) return invalidInput(policy, inputErrors);
  const sandbox = await Sandbox.start({ policy, host: opts.host, mode: 'task', signal: opts.signal });
  sandbox.send({
    source: loaded.source,
    filename: loaded.filename,
    input,
    context: { ...opts.context, executionId: sandbox.id },
    network: policy.network.mode,
  });
  return sandbox.result((output) => schemaErrors(loaded.outputSchema, output, 'output'));
}

export interface ExecOptions {
  trustLevel?: string;
  policy?: PolicyInput;
  host?: HostConfig;
  signal?: AbortSignal;
  stdin?: 'ignore' | 'inherit';
  stdout?: Writable;
  stderr?: Writable;
}

/** Run any program (argv inside the sandbox; bring it in with policy.filesystem.binds). */
export async function execProgram(argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
  const policy = resolvePolicy({ trustLevel: opts.trustLevel, overrides: opts.policy });
  const sandbox = await Sandbox.start({
    policy, host: opts.host, mode: 'program', command: argv, signal: opts.signal,
    stdin: opts.stdin, forwardStdout: opts.stdout, forwardStderr: opts.stderr,
  });
  return sandbox.result();
}

/** Input rejected before any sandbox starts: a result of its own kind, not a crash. */
function invalidInput(policy: Policy, details: string[]): RunResult {
  return {
    id: newRunId(),
    status: 'failed',
    error: { kind: 'InvalidInput', message: 'the input does not match input.schema.json', details },
    exit_code: null,
    signal: null,
    usage: { wall_ms: 0, cpu_ms: 0, peak_memory_bytes: 0, peak_pids: 0, disk_read_bytes: 0, disk_write_bytes: 0, net_rx_bytes: 0, net_tx_bytes: 0, peak_fds: 0, workspace_bytes: 0 },
    violations: [],
    stdout: '',
    stderr: '',
    stdout_dropped_bytes: 0,
    stderr_dropped_bytes: 0,
    runtime: policy.runtime,
    cgroup: 'v1',
    trust_level: policy.trustLevel,
    degraded: [],
    not_needed: [],
    timings_ms: { prepare: 0, start: 0, run: 0, cleanup: 0 },
  };
}
