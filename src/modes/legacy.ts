// Legacy execution: the task runs IN THIS PROCESS, in a node:vm context, the way Ratchet runs tasks
// today (Boa inside the server). node:vm is not a security boundary: the task can reach the host
// through require and constructors. It exists only for the plan's migration path; every run is
// marked unsafe (result mode "legacy", runtime "none", the audit log, a warning on stderr).
// Enforced: the wall time for synchronous code (vm's timeout) and for the awaited result, and the
// stdout/stderr caps. Not enforced: memory, CPU, processes, files, network (nothing can be, here).
import { builtinModules, createRequire } from 'node:module';
import { createContext, Script } from 'node:vm';
import type { Policy } from '../config/policy.js';
import { newRunId } from '../runtime/ids.js';
import type { RunError, RunResult } from '../supervisor/result.js';
import type { LoadedTask } from '../task/load.js';
import { checkMessage } from '../supervisor/run.js';
import { schemaCheck } from '../task/validate.js';
import { ShapeError, taskFunction } from './shapes.js';

/** Captured console output, cut at the policy's cap (counted like the sandbox's *_dropped_bytes). */
class Capture {
  text = '';
  dropped = 0;
  constructor(private readonly max: number) {}
  write(s: string): void {
    const room = this.max - Buffer.byteLength(this.text);
    if (room >= Buffer.byteLength(s)) this.text += s;
    else {
      const kept = Buffer.from(s).subarray(0, Math.max(0, room)).toString();
      this.text += kept;
      this.dropped += Buffer.byteLength(s) - Buffer.byteLength(kept);
    }
  }
}

function defineError(name: string) {
  const E = class extends Error {
    constructor(message?: string) {
      super(message);
      this.name = name;
    }
  };
  Object.defineProperty(E, 'name', { value: name });
  return E;
}
class HttpError extends Error {
  constructor(readonly status: number, message?: string) {
    super(message);
    this.name = 'HttpError';
  }
}
const NetworkError = defineError('NetworkError');
const RATCHET_ERRORS = {
  AuthenticationError: defineError('AuthenticationError'), AuthorizationError: defineError('AuthorizationError'), NetworkError, HttpError,
  ValidationError: defineError('ValidationError'), ConfigurationError: defineError('ConfigurationError'), RateLimitError: defineError('RateLimitError'),
  ServiceUnavailableError: defineError('ServiceUnavailableError'), TimeoutError: defineError('TimeoutError'), DataError: defineError('DataError'),
};

const fmt = (args: unknown[]) => `${args.map((a) => (typeof a === 'string' ? a : safeJson(a))).join(' ')}\n`;
function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

const TIMED_OUT = 'ERR_SCRIPT_EXECUTION_TIMEOUT';

export interface LegacyRunOptions {
  input: unknown;
  executionId?: string;
  context?: Record<string, unknown>;
}

/** Run a loaded task in-process. The result has the RunResult schema, with mode "legacy". */
export async function runLegacy(loaded: LoadedTask, policy: Policy, opts: LegacyRunOptions): Promise<RunResult> {
  const id = opts.executionId ?? newRunId();
  const wallMs = policy.resources.wallTime;
  const stdout = new Capture(policy.resources.stdoutMax);
  const stderr = new Capture(policy.resources.stderrMax);
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const hostRequire = createRequire(import.meta.url);
  // As in the sandbox: node's builtins only, an environment holding only the policy's env.
  const taskRequire = (mod: string) => {
    if (!builtinModules.includes(mod.replace(/^node:/, ''))) throw new Error(`Cannot find module '${mod}' (only node's builtins are available)`);
    return hostRequire(mod);
  };
  // The task's timers, cleared when its run ends: nothing of a finished legacy run keeps firing
  // in this process (what it started through require, e.g. a server, cannot be tracked).
  const timers = new Set<NodeJS.Timeout>();
  const track = <A extends unknown[]>(start: (cb: (...a: A) => void, ms?: number, ...a: A) => NodeJS.Timeout, once: boolean) =>
    (cb: (...a: A) => void, ms?: number, ...a: A) => {
      const t: NodeJS.Timeout = start((...x: A) => {
        if (once) timers.delete(t);
        cb(...x);
      }, ms, ...a);
      timers.add(t);
      return t;
    };
  const module = { exports: {} as unknown };
  const ctx = createContext({
    ...RATCHET_ERRORS,
    console: { log: (...a: unknown[]) => stdout.write(fmt(a)), info: (...a: unknown[]) => stdout.write(fmt(a)), warn: (...a: unknown[]) => stderr.write(fmt(a)), error: (...a: unknown[]) => stderr.write(fmt(a)), debug: (...a: unknown[]) => stdout.write(fmt(a)) },
    module,
    exports: module.exports,
    require: taskRequire,
    process: { env: { ...policy.env }, pid: process.pid, platform: process.platform, version: process.version },
    // Ratchet's synchronous fetch needs the sandbox's fetch worker; legacy has none.
    fetch: () => {
      throw new NetworkError('fetch is not available in legacy execution mode');
    },
    setTimeout: track(setTimeout, true), clearTimeout, setInterval: track(setInterval, false), clearInterval, queueMicrotask, TextEncoder, TextDecoder, URL, URLSearchParams,
  });

  const finish = (ok: { output: unknown } | { error: RunError }): RunResult => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    const cpu = process.cpuUsage(cpu0);
    return {
      id,
      status: 'output' in ok ? 'succeeded' : 'failed',
      ...ok,
      exit_code: null,
      signal: null,
      // Only the wall clock is this run's own; CPU is the whole process's over the run.
      usage: { wall_ms: Math.round(performance.now() - started), cpu_ms: Math.round((cpu.user + cpu.system) / 1000), peak_memory_bytes: 0, peak_pids: 0, disk_read_bytes: 0, disk_write_bytes: 0, net_rx_bytes: null, net_tx_bytes: null, peak_fds: 0, workspace_bytes: null },
      violations: [],
      stdout: stdout.text,
      stderr: stderr.text,
      stdout_dropped_bytes: stdout.dropped,
      stderr_dropped_bytes: stderr.dropped,
      runtime: 'none',
      cgroup: 'none',
      mode: 'legacy',
      trust_level: policy.trustLevel,
      degraded: ['sandbox: legacy execution mode runs the task in-process, with no isolation and no limits but wall time and output size'],
      not_needed: [],
      timings_ms: { prepare: 0, start: 0, run: Math.round(performance.now() - started), cleanup: 0 },
    };
  };
  const timeout = (): RunResult => finish({ error: { kind: 'Timeout', limit: 'wall', limit_value: wallMs, message: `the task ran longer than its wall-time limit of ${wallMs} ms` } });
  const thrown = (e: unknown): RunResult => {
    if ((e as { code?: unknown })?.code === TIMED_OUT) return timeout();
    if (e instanceof ShapeError) return finish({ error: { kind: 'InvalidTask', message: e.message } });
    const err = e as { name?: unknown; message?: unknown; stack?: unknown };
    const isErr = typeof e === 'object' && e !== null && typeof err.message === 'string';
    return finish({
      error: {
        kind: 'TaskError',
        name: isErr && typeof err.name === 'string' ? err.name : 'Error',
        message: isErr ? (err.message as string) : `non-Error thrown: ${safeJson(e)}`,
        ...(isErr && typeof err.stack === 'string' ? { stack: err.stack.split('\n').slice(0, 12).join('\n') } : {}),
      },
    });
  };

  let value: unknown;
  try {
    const fn = taskFunction(ctx, loaded.source, loaded.filename, loaded.entry, wallMs);
    Object.assign(ctx, { __pawlFn: fn, __pawlInput: structuredClone(opts.input ?? {}), __pawlContext: { ...opts.context, executionId: id } });
    const left = Math.max(1, wallMs - (performance.now() - started));
    value = new Script('__pawlFn(__pawlInput, __pawlContext)').runInContext(ctx, { timeout: Math.ceil(left) });
  } catch (e) {
    return thrown(e);
  }
  let timer: NodeJS.Timeout | undefined;
  const expired = Symbol('expired');
  try {
    const left = Math.max(1, wallMs - (performance.now() - started));
    const output = await Promise.race([Promise.resolve(value), new Promise((resolve) => (timer = setTimeout(resolve, left, expired)))]);
    if (output === expired) return timeout();
    return await checkOutput(loaded, finish({ output: output === undefined ? null : JSON.parse(JSON.stringify(output) ?? 'null') }));
  } catch (e) {
    if (e instanceof TypeError && /circular|BigInt/i.test(e.message)) return finish({ error: { kind: 'InvalidOutput', message: `output is not JSON-serialisable: ${e.message}` } });
    return thrown(e);
  } finally {
    clearTimeout(timer);
  }
}

/** The output schema, checked as the sandboxed path checks it (run.ts). */
async function checkOutput(loaded: LoadedTask, result: RunResult): Promise<RunResult> {
  const { errors, bound } = await schemaCheck(loaded.outputSchema, result.output, loaded.limits.validation);
  if (!errors.length) return result;
  const { output: _dropped, ...rest } = result;
  return { ...rest, status: 'failed', error: { kind: 'InvalidOutput', message: checkMessage(loaded.outputSchema!, bound), details: errors } };
}
