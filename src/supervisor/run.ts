// The library's front door: run a Ratchet task or any program in a fresh sandbox.
import { availableParallelism } from 'node:os';
import type { Writable } from 'node:stream';
import type { HostConfig } from '../config/host.js';
import type { Policy, PolicyInput } from '../config/policy.js';
import { mergeInputs, resolvePolicy } from '../config/resolve.js';
import { loadTask, readTask, type LoadedTask } from '../task/load.js';
import type { TaskRequest } from '../task/protocol.js';
import type { HttpMock } from '../task/testcase.js';
import { schemaCheck, type CompiledSchema } from '../task/validate.js';
import { assertSupported, driverFor } from './host.js';
import { hostConfig } from '../config/host.js';
import { PawlError } from '../errors.js';
import { newRunId } from '../runtime/ids.js';
import { published } from './phases/observers.js';
import { prepareAhead } from './phases/prepare.js';
import { runResult } from './phases/report.js';
import type { RunResult } from './result.js';
import { Sandbox } from './sandbox.js';
import { teardownsBelow, trackTeardown, type Teardown, type TeardownFailure } from './teardowns.js';
import { BACKGROUND_UNMOUNT_FLUSH_MS } from './workspace-fs.js';

export interface RunTaskOptions {
  input?: unknown;
  trustLevel?: string;
  /** Per-run overrides, laid over the trust level and the task's own policy. */
  policy?: PolicyInput;
  host?: HostConfig;
  signal?: AbortSignal;
  /** Extra fields for the task's context (executionId is always set). */
  context?: Record<string, unknown>;
  /** A test case's mock.http: fetch is answered from these only, and the run gets no network. */
  mocks?: HttpMock[];
  /**
   * Resolve only once the run's teardown (its cgroup, /workspace mount and scratch dir) is done,
   * with `cleanup_error` when something stayed, and end the run at the harness's exit rather than
   * at its reply. Default false: the result comes as soon as its verdict and usage are final (the
   * pool's way: every process of the run killed at the reply, its last figures read, ~13 ms
   * sooner here) and the teardown goes on after it: teardownsSettled() waits for it, and what it
   * could not remove goes on the leftover list that gc clears (and to `teardownFailed`). The CLI
   * sets it: it prints cleanup_error.
   */
  awaitCleanup?: boolean;
  /** Told when a teardown that came after its result could not remove everything (as a pool's `teardownFailed`). */
  teardownFailed?: (failure: TeardownFailure) => void;
}

/**
 * At most this many teardowns after their results at once (runTask's default): a caller that runs
 * task after task on a disk slow to write back never holds more groups, loop mounts and host ids
 * than this; the next run waits for one to end.
 */
const MAX_TEARDOWNS = Math.max(2, availableParallelism());

/** The effective policy of a task run: defaults <- trust level <- task policy <- overrides. */
export function taskPolicy(task: LoadedTask, opts: Pick<RunTaskOptions, 'trustLevel' | 'policy'>): Policy {
  const policy = resolvePolicy({ trustLevel: opts.trustLevel, task: task.policy, overrides: opts.policy });
  // Below this node dies (SIGSEGV) before the harness has read the task: a verdict that would
  // blame the task for the policy. (Measured: node 20 needs 20 here; 4 to spare. A program run
  // may go down to the schema's 16.)
  if (policy.resources.fileDescriptors < TASK_MIN_FDS) {
    throw new PawlError('InvalidPolicy', `resources.fileDescriptors ${policy.resources.fileDescriptors} is below the ${TASK_MIN_FDS} a task needs: node, which runs it, dies before it starts with fewer (raise fileDescriptors to at least ${TASK_MIN_FDS})`);
  }
  return policy;
}

/** The fewest file descriptors a task run may have (taskPolicy). */
export const TASK_MIN_FDS = 24;

/** The policy of one run: the task's, and no network at all when fetch is answered from mocks. */
export function runPolicy(task: LoadedTask, opts: Pick<RunTaskOptions, 'trustLevel' | 'policy' | 'mocks'>): Policy {
  // A mocked run never opens a socket, whatever the caller's network mode.
  const overrides = opts.mocks ? mergeInputs(opts.policy, { network: { mode: 'none', allowedHosts: [] } }) : opts.policy;
  return taskPolicy(task, { trustLevel: opts.trustLevel, policy: overrides });
}

/** Run a task (a directory or .js file, or an already loaded task). Throws PawlError when pawl cannot run it. */
export async function runTask(task: string | LoadedTask, opts: RunTaskOptions = {}): Promise<RunResult> {
  prepareAhead(opts.host ?? hostConfig());
  const { task: loaded, compiled } = typeof task === 'string' ? await readTask(task, { tests: false }) : { task, compiled: Promise.resolve() };
  let policy: Policy;
  try {
    policy = runPolicy(loaded, opts);
    assertSupported(policy);
  } catch (e) {
    await compiled; // a schema that does not compile is reported first, as loadTask did
    throw e;
  }
  const input = opts.input ?? {};
  // The sandbox is made and node boots in it while the schema thread compiles the task's schemas
  // and checks the input (the thread's start-up alone is ~100 ms of a CLI run). Nothing of the
  // task runs before dispatchTask hands it over, and a task or input refused here ends that
  // sandbox unused: the outcome, and which problem is reported first, are loadTask's and
  // prepareTaskRun's.
  const early = opts.awaitCleanup !== true;
  if (early) await teardownsBelow(MAX_TEARDOWNS);
  const starting = Sandbox.start({ policy, host: opts.host, mode: 'task', signal: opts.signal, ...(early ? { endAtReply: true, unmountFlushMs: BACKGROUND_UNMOUNT_FLUSH_MS } : {}) });
  starting.catch(() => {}); // awaited below, on every path
  const rejected = await compiled.then(() => inputRejection(loaded, policy, input, opts.host)).catch(async (e: unknown) => {
    await discard(starting);
    throw e;
  });
  if (rejected) {
    await discard(starting);
    return rejected;
  }
  const sandbox = await starting;
  return dispatchTask(sandbox, loaded, policy, input, opts.context, opts.mocks, early ? (teardown) => trackTeardown(sandbox.id, teardown, opts.teardownFailed) : undefined);
}

/** A sandbox started for a run that will not happen: ended and torn down (its own failure to start is moot). */
async function discard(starting: Promise<Sandbox>): Promise<void> {
  const sandbox = await starting.catch(() => null);
  if (!sandbox) return;
  try {
    await sandbox.kill('cancelled');
  } finally {
    await sandbox.result().catch(() => {});
  }
}

/**
 * What every way of running a task does before a sandbox is involved (the pool): load, resolve
 * the run's policy, refuse what the host cannot enforce, check the input off the event loop.
 * Input that does not match is a result of its own (`rejected`), not an error.
 */
export async function prepareTaskRun(
  task: string | LoadedTask,
  opts: RunTaskOptions,
): Promise<{ loaded: LoadedTask; policy: Policy; input: unknown } | { rejected: RunResult }> {
  const loaded = typeof task === 'string' ? await loadTask(task, { tests: false }) : task;
  const policy = runPolicy(loaded, opts);
  assertSupported(policy);
  const input = opts.input ?? {};
  const rejected = await inputRejection(loaded, policy, input, opts.host);
  return rejected ? { rejected } : { loaded, policy, input };
}

/** The input checked against input.schema.json on the schema thread: null when it matches, else the run's (published) result. */
async function inputRejection(loaded: LoadedTask, policy: Policy, input: unknown, host: HostConfig | undefined): Promise<RunResult | null> {
  const inputCheck = await schemaCheck(loaded.inputSchema, input, loaded.limits.validation);
  if (!inputCheck.errors.length) return null;
  const { version } = await driverFor(host ?? hostConfig());
  return published(invalidInput(policy, version, checkMessage(loaded.inputSchema!, inputCheck.bound), inputCheck.errors), { task: loaded.policyName, label: loaded.name, policy });
}

/**
 * Hand a loaded task to a started task sandbox and wait for its result (also the pool's way in).
 * With `onTeardown` the result comes as soon as its verdict and usage are final, and the caller
 * is handed the teardown still in progress (Sandbox.settled); without, after the teardown, with
 * `cleanup_error` (the one-run path: its caller learns everything the run left).
 */
export async function dispatchTask(
  sandbox: Sandbox, loaded: LoadedTask, policy: Policy, input: unknown, context?: Record<string, unknown>, mocks?: HttpMock[],
  onTeardown?: (teardown: Promise<Teardown>) => void,
): Promise<RunResult> {
  await sandbox.send(taskRequest(loaded, { input, executionId: sandbox.id, context, network: policy.network.mode, mocks }));
  // A run ended at its reply: its output goes to the schema thread at the reply, beside the reap
  // (the kill, the pipes' end, the last figures), instead of after it; that answer is used only
  // for the very output the verdict carries (measured in interleaved pairs: median 0.97x of the
  // dispatch time, the slow tail lower in 7 of 8 runs).
  const early = loaded.outputSchema ? sandbox.earlyReply().then((r) => (r?.ok ? { output: r.output, check: outputCheck(r.output, loaded) } : null), () => null) : null;
  let result: RunResult;
  if (onTeardown) {
    const settled = await sandbox.settled();
    onTeardown(settled.teardown);
    result = settled.result;
  } else result = await sandbox.result();
  const checked = await early;
  return published(await checkOutput(result, loaded, checked && checked.output === result.output ? checked.check : undefined), { task: loaded.policyName, label: loaded.name, policy });
}

/** What the harness is handed for one run of a loaded task. */
export function taskRequest(
  loaded: LoadedTask,
  run: { input: unknown; executionId: string; context?: Record<string, unknown>; network: TaskRequest['network']; mocks?: HttpMock[] },
): TaskRequest {
  return {
    source: loaded.source,
    filename: loaded.filename,
    input: run.input,
    context: { ...run.context, executionId: run.executionId },
    network: run.mocks ? 'none' : run.network,
    ...(loaded.entry !== undefined ? { entry: loaded.entry } : {}),
    ...(run.mocks ? { mocks: run.mocks.map(({ url, method, response }) => ({ url, method, response })) } : {}),
  };
}

/**
 * A succeeded task's output, checked off the event loop against output.schema.json (validate.ts),
 * and checked to be serialisable at all: a reply parses iteratively, but JSON.stringify recurses,
 * so an output nested deeply enough would make every printer of the result throw.
 */
export async function checkOutput(result: RunResult, loaded: LoadedTask, started?: ReturnType<typeof outputCheck>): Promise<RunResult> {
  if (result.status !== 'succeeded') return result;
  const invalid = (message: string, details?: string[]): RunResult => {
    const { output: _dropped, ...rest } = result;
    return { ...rest, status: 'failed', error: { kind: 'InvalidOutput', message, ...(details ? { details } : {}) } };
  };
  try {
    JSON.stringify(result.output);
  } catch {
    return invalid('the task output is nested too deeply to be serialised');
  }
  const { errors, bound } = await (started ?? outputCheck(result.output, loaded));
  return errors.length ? invalid(checkMessage(loaded.outputSchema!, bound), errors) : result;
}

/** The output's check against output.schema.json on the schema thread (validate.ts). */
function outputCheck(output: unknown, loaded: LoadedTask): ReturnType<typeof schemaCheck> {
  return schemaCheck(loaded.outputSchema, output, loaded.limits.validation);
}

export function checkMessage(schema: CompiledSchema, bound: string | null): string {
  const what = schema.what === 'input' ? 'the input' : 'the task output';
  return bound ? `${what} could not be checked against ${schema.source}: validation exceeded ${bound}` : `${what} does not match ${schema.source}`;
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
  return published(await sandbox.result(), { task: argv[0] ?? '', policy });
}

/** Input rejected before any sandbox starts: a result of its own kind, not a crash. */
export function invalidInput(policy: Policy, cgroup: RunResult['cgroup'], message: string, details: string[]): RunResult {
  return runResult({ id: newRunId(), policy, cgroup, verdict: { status: 'failed', error: { kind: 'InvalidInput', message, details }, exit_code: null, signal: null } });
}
