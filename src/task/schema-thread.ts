// The thread that compiles and checks a task's JSON Schemas (validate.ts says why off the event
// loop), apart from validate.ts so that starting it needs no zod: the CLI starts it first thing
// for `pawl run`/`pawl test` (warmSchemaThread), and the thread's own start-up (a V8 isolate,
// ajv and re2js: ~100 ms) runs beside the loading of the run's modules instead of after it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SCHEMA_WORKER_SOURCE } from './schema-worker.js';

/** ValidationLimits.heapMb's default (the schema reads it from here: a warmed thread fits it). */
export const DEFAULT_HEAP_MB = 256;

/** What the thread reads of a run's ValidationLimits (validate.ts; not imported: it would be an import circle). */
interface ValidationLimits {
  timeMs: number;
  heapMb: number;
  maxErrors: number;
}

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

// The CLI's build has ajv, ajv-draft-04 and re2js in one file (scripts/bundle-cli.mjs): requiring
// ajv's ~100 files cost the thread's start-up 60-100 ms more (measured on a 2-core host).
const BUNDLED = fileURLToPath(new URL('./schema-deps.cjs', import.meta.url));
const require = createRequire(import.meta.url);
const MODULES = existsSync(BUNDLED) ? { bundle: BUNDLED } : { ajv: require.resolve('ajv'), ajvDraft04: require.resolve('ajv-draft-04'), re2js: require.resolve('re2js') };

/** One worker, one job at a time; replaced after a bound is hit (which terminates it). */
class SchemaWorker {
  /** Start the thread ahead of its first job (a no-op when one runs). */
  warm(heapMb: number): void {
    if (this.worker) return;
    this.spawn(heapMb).unref(); // idle, it must not keep the process alive
  }

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

export const schemaThread = new SchemaWorker();

/** Start the schema thread now, with the default heap bound (a job with another bound replaces it). */
export const warmSchemaThread = (): void => schemaThread.warm(DEFAULT_HEAP_MB);
