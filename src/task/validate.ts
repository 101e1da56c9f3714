// JSON Schema validation of a task's input and output. The schemas are the task's, so hostile:
// ajv compiles them to code, `pattern` can backtrack exponentially, `allOf`/`anyOf` can multiply
// errors, and a big schema or value can exhaust a heap. So validation never runs on the
// supervisor's event loop: it runs in a worker thread (schema-worker.ts) with linear-time regular
// expressions, the first error only, a heap bound (resourceLimits) and a time bound (the worker is
// terminated when it runs over). The supervisor's timers keep running meanwhile.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PawlError } from '../errors.js';
import { DEFAULT_HEAP_MB, schemaThread } from './schema-thread.js';

/** Bounds on validating against a task's schemas (loadTask's `limits.validation`). */
export const ValidationLimits = z.strictObject({
  /** Compiling a schema, or validating one value, may take this long. */
  timeMs: z.number().int().min(10).max(600_000).default(5000),
  /** The worker's V8 heap (old generation), in MiB. */
  heapMb: z.number().int().min(16).max(8192).default(DEFAULT_HEAP_MB),
  /** Schema errors reported per value, at most. */
  maxErrors: z.number().int().min(1).max(1000).default(20),
});
export type ValidationLimits = z.infer<typeof ValidationLimits>;

import type { CompiledSchema } from './schema-thread.js';
export type { CompiledSchema };

/** Hashes of schemas known to compile (so loading a task twice does not compile twice). */
const compiles = new Set<string>();

/** Check a task's schema compiles within the bounds (schemaOf, then assertCompiles). Throws InvalidTask naming the schema's source. */
export async function compileSchema(schema: unknown, what: CompiledSchema['what'], source: string, limits: ValidationLimits): Promise<CompiledSchema> {
  const compiled = schemaOf(schema, what, source);
  await assertCompiles(compiled, limits);
  return compiled;
}

/** A task's schema as the schema thread takes it, not yet compiled. Throws InvalidTask when it is no object. */
export function schemaOf(schema: unknown, what: CompiledSchema['what'], source: string): CompiledSchema {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    throw new PawlError('InvalidTask', `${source}: must hold a JSON Schema object`);
  }
  const text = JSON.stringify(schema);
  return { what, source, text, hash: createHash('sha256').update(text).digest('hex') };
}

/** Compile a schema on the schema thread, within the bounds (once per content). Throws InvalidTask naming its source. */
export async function assertCompiles(compiled: CompiledSchema, limits: ValidationLimits): Promise<void> {
  const { source } = compiled;
  if (compiles.has(compiled.hash)) return;
  const o = await schemaThread.run('compile', compiled, limits);
  if ('compileError' in o) throw new PawlError('InvalidTask', `${source}: not a usable JSON Schema: ${o.compileError}`);
  if ('bound' in o) throw new PawlError('InvalidTask', `${source}: compiling the schema exceeded ${o.bound}`);
  if (compiles.size > 4096) compiles.clear();
  compiles.add(compiled.hash);
}

/**
 * Problems, one line each (empty when valid or when there is no schema), and which bound stopped
 * the validation, if one did.
 */
export async function schemaCheck(schema: CompiledSchema | null, value: unknown, limits: ValidationLimits): Promise<{ errors: string[]; bound: string | null }> {
  if (!schema) return { errors: [], bound: null };
  const o = await schemaThread.run('validate', schema, limits, value);
  if ('bound' in o) return { errors: [`${schema.what}: validation against ${schema.source} stopped: it exceeded ${o.bound}`], bound: o.bound };
  if ('compileError' in o) return { errors: [`${schema.what}: ${schema.source} could not be compiled: ${o.compileError}`], bound: null };
  return { errors: o.errors.map((e) => `${schema.what}${e}`), bound: null };
}
