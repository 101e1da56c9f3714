// JSON Schema validation of a task's input and output. The schemas are the task's, so hostile:
// ajv compiles them to code, `pattern` can backtrack exponentially, `allOf`/`anyOf` can multiply
// errors, and a big schema or value can exhaust a heap. So validation never runs on the
// supervisor's event loop: it runs in a worker thread (schema-worker.ts) with linear-time regular
// expressions, the first error only, a heap bound (resourceLimits) and a time bound (the worker is
// terminated when it runs over). The supervisor's timers keep running meanwhile.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { z } from 'zod';
import { PawlError } from '../errors.js';
import { SCHEMA_WORKER_SOURCE } from './schema-worker.js';

/** Bounds on validating against a task's schemas (loadTask's `limits.validation`). */
export const ValidationLimits = z.strictObject({
  /** Compiling a schema, or validating one value, may take this long. */
  timeMs: z.number().int().min(10).max(600_000).default(5000),
  /** The worker's V8 heap (old generation), in MiB. */
  heapMb: z.number().int().min(16).max(8192).default(256),
  /** Schema errors reported per value, at most. */
  maxErrors: z.number().int().min(1).max(1000).default(20),
});
export type ValidationLimits = z.infer<typeof ValidationLimits>;

/** A schema that compiled; validators are cached in the worker by `hash`. */
export interface CompiledSchema {
  what: 'input' | 'output';
  /** Where it was read: "input.schema.json", "meta.yaml input_schema", ... */
  source: string;
  hash: string;
  text: string;
}

type Outcome = { errors: string[] } | { compileError: string } | { bound: string };
interface Job {
  msg: { id: number; op: 'compile' | 'validate'; hash: string; text: string; value?: unknown; maxErrors: number };
  limits: ValidationLimits;
  done: (o: Outcome) => void;
}

const require = createRequire(import.meta.url);
const MODULES = { ajv: require.resolve('ajv'), ajvDraft04: require.resolve('ajv-draft-04'), re2js: require.resolve('re2js') };

/** One worker, one job at a time; replaced after a bound is hit (which terminates it). */
class SchemaWorker {
  private worker: Worker | null = null;
  private ready: Promise<void> | null = null;
  private heapMb = 0;
  private queue: Job[] = [];
  private busy: Job | null = null;
  private ids = 0;

  run(op: Job['msg']['op'], schema: CompiledSchema, limits: ValidationLimits, value?: unknown): Promise<Outcome> {
    return new Promise((done) => {
      this.queue.push({ msg: { id: ++this.ids, op, hash: schema.hash, text: schema.text, value, maxErrors: limits.maxErrors }, limits, done });
      this.next();
    });
  }

  private spawn(heapMb: number): Worker {
    const w = new Worker(SCHEMA_WORKER_SOURCE, {
      eval: true,
      // Not the parent's flags: --input-type=module would make this CommonJS source ESM.
      execArgv: [],
      workerData: MODULES,
      resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
      // Never the supervisor's own stdout/stderr, which carry the result.
      stdout: true,
      stderr: true,
    });
    this.worker = w;
    this.heapMb = heapMb;
    this.ready = new Promise((resolve) => {
      const onReady = (m: { ready?: boolean }) => {
        if (m?.ready) {
          w.off('message', onReady);
          resolve();
        }
      };
      w.on('message', onReady);
    });
    w.on('message', (m: { id: number } & Outcome) => {
      if (w === this.worker && this.busy?.msg.id === m.id) this.finish(m);
    });
    w.on('error', (e: Error & { code?: string }) => {
      if (w !== this.worker) return;
      this.drop();
      this.finish({ bound: e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `its memory bound of ${heapMb} MiB` : `a failure of the validator (${e.code ?? e.name})` });
    });
    w.on('exit', () => {
      if (w !== this.worker) return;
      this.drop();
      this.finish({ bound: 'a failure of the validator (it exited)' });
    });
    return w;
  }

  private drop(): void {
    const w = this.worker;
    this.worker = null;
    this.ready = null;
    void w?.terminate();
  }

  private timer: NodeJS.Timeout | null = null;

  private finish(o: Outcome): void {
    const job = this.busy;
    if (!job) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.busy = null;
    job.done(o);
    this.next();
    // Idle, the worker must not keep the process alive. (unref only after every listener is on:
    // adding a 'message' listener refs the worker's port again.)
    if (!this.busy) this.worker?.unref();
  }

  private next(): void {
    if (this.busy) return;
    const job = this.queue.shift();
    if (!job) return;
    this.busy = job;
    if (this.worker && this.heapMb !== job.limits.heapMb) this.drop();
    const w = this.worker ?? this.spawn(job.limits.heapMb);
    w.ref(); // a job is waiting on it
    // The clock starts once the worker runs (starting one under load is not the schema's cost).
    void this.ready!.then(() => {
      if (this.busy !== job || w !== this.worker) return;
      this.timer = setTimeout(() => {
        this.drop();
        this.finish({ bound: `its time bound of ${job.limits.timeMs} ms` });
      }, job.limits.timeMs);
      try {
        w.postMessage(job.msg);
      } catch (e) {
        // Structured cloning refuses what it cannot copy, e.g. a value nested too deeply.
        this.finish({ bound: `what can be handed to the validator (${(e as Error).name})` });
      }
    });
  }
}

const worker = new SchemaWorker();
/** Hashes of schemas known to compile (so loading a task twice does not compile twice). */
const compiles = new Set<string>();

/** Check a task's schema compiles within the bounds. Throws InvalidTask naming the schema's source. */
export async function compileSchema(schema: unknown, what: CompiledSchema['what'], source: string, limits: ValidationLimits): Promise<CompiledSchema> {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new PawlError('InvalidTask', `${source}: must hold a JSON Schema object`);
  }
  const text = JSON.stringify(schema);
  const compiled = { what, source, text, hash: createHash('sha256').update(text).digest('hex') };
  if (compiles.has(compiled.hash)) return compiled;
  const o = await worker.run('compile', compiled, limits);
  if ('compileError' in o) throw new PawlError('InvalidTask', `${source}: not a usable JSON Schema: ${o.compileError}`);
  if ('bound' in o) throw new PawlError('InvalidTask', `${source}: compiling the schema exceeded ${o.bound}`);
  if (compiles.size > 4096) compiles.clear();
  compiles.add(compiled.hash);
  return compiled;
}

/**
 * Problems, one line each (empty when valid or when there is no schema), and which bound stopped
 * the validation, if one did.
 */
export async function schemaCheck(schema: CompiledSchema | null, value: unknown, limits: ValidationLimits): Promise<{ errors: string[]; bound: string | null }> {
  if (!schema) return { errors: [], bound: null };
  const o = await worker.run('validate', schema, limits, value);
  if ('bound' in o) return { errors: [`${schema.what}: validation against ${schema.source} stopped: it exceeded ${o.bound}`], bound: o.bound };
  if ('compileError' in o) return { errors: [`${schema.what}: ${schema.source} could not be compiled: ${o.compileError}`], bound: null };
  return { errors: o.errors.map((e) => `${schema.what}${e}`), bound: null };
}
