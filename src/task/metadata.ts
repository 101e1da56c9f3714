// Ratchet's task metadata (metadata.json, or meta.yaml in newer tasks) and how pawl reads each
// field Ratchet's authors write. Every reading is recorded, so `pawl explain TASK` can show it.
import { z } from 'zod';
import { formatSize, parseDuration, parseSize } from '../config/units.js';
import type { PolicyInput } from '../config/policy.js';
import { PawlError } from '../errors.js';

/** Older Ratchet tasks list their fields instead of a schema: `inputs: { a: { type, required } }`. */
const FieldList = z.record(z.string(), z.looseObject({ type: z.string().optional(), description: z.string().optional(), required: z.boolean().optional() }));

export const TaskMetadata = z.looseObject({
  uuid: z.string().optional(),
  version: z.union([z.string(), z.number()]).optional(),
  /** metadata.json's display name; meta.yaml writes `name`. */
  label: z.string().optional(),
  name: z.string().optional(),
  description: z.string().optional(),
  author: z.string().optional(),
  tags: z.array(z.string()).optional(),
  /** A number below 1000 is seconds, otherwise milliseconds; a string carries its unit ("30s"). */
  timeout: z.union([z.number(), z.string()]).optional(),
  /** "128MB"; a number is bytes. */
  memory_limit: z.union([z.string(), z.number()]).optional(),
  /** A fraction of one core ("0.1" or 0.1): becomes a CPU quota in percent. */
  cpu_limit: z.union([z.number(), z.string()]).optional(),
  /** meta.yaml: the file to load (task.js) or the function to call (main). */
  entrypoint: z.string().optional(),
  input_schema: z.unknown().optional(),
  output_schema: z.unknown().optional(),
  test_cases: z.array(z.unknown()).optional(),
  inputs: FieldList.optional(),
  outputs: FieldList.optional(),
});
export type TaskMetadata = z.infer<typeof TaskMetadata>;

/** How one field was read, for `pawl explain`: "timeout: 30 (metadata.json) read as 30 s (...)". */
export interface FieldReading {
  field: string;
  raw: string;
  source: string;
  read: string;
}

export function formatReading(r: FieldReading): string {
  return `${r.field}: ${r.raw} (${r.source}) read as ${r.read}`;
}

// Messages name the field and the file, never the value (the file is the task's).
const refuse = (source: string, field: string, expected: string): never => {
  throw new PawlError('InvalidTask', `${source}: ${field} is not ${expected}`);
};

const NUMBER = /^\s*\d+(\.\d+)?\s*$/;

function timeoutMs(raw: number | string, source: string): { ms: number; how: string } {
  const bare = typeof raw === 'number' ? raw : NUMBER.test(raw) ? Number(raw) : null;
  if (bare !== null) {
    if (!Number.isFinite(bare) || bare <= 0) refuse(source, 'timeout', 'a positive number');
    return bare < 1000 ? { ms: Math.round(bare * 1000), how: 'a bare number below 1000 is seconds' } : { ms: Math.round(bare), how: 'a bare number from 1000 up is milliseconds' };
  }
  let ms = 0;
  try {
    ms = parseDuration(raw as string);
  } catch {
    refuse(source, 'timeout', 'a duration (a number, or a string with a unit such as "30s")');
  }
  if (ms <= 0) refuse(source, 'timeout', 'a positive duration');
  return { ms, how: 'as written' };
}

function cpuPercent(raw: number | string, source: string): number {
  const n = typeof raw === 'number' ? raw : NUMBER.test(raw) ? Number(raw) : NaN;
  if (!(n > 0 && n <= 64)) refuse(source, 'cpu_limit', 'a fraction of a core above 0 (e.g. 0.5), at most 64');
  return Math.round(n * 10_000) / 100;
}

const showMs = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/** The task's own limits from its metadata (resolvePolicy clamps them to the trust level). */
export function metadataPolicy(meta: TaskMetadata, source: string): { resources: NonNullable<PolicyInput['resources']>; readings: FieldReading[] } {
  const resources: NonNullable<PolicyInput['resources']> = {};
  const readings: FieldReading[] = [];
  if (meta.timeout !== undefined) {
    const { ms, how } = timeoutMs(meta.timeout, source);
    resources.wallTime = ms;
    readings.push({ field: 'timeout', raw: JSON.stringify(meta.timeout), source, read: `${showMs(ms)} of wall time (${how})` });
  }
  if (meta.memory_limit !== undefined) {
    let bytes = 0;
    try {
      bytes = parseSize(meta.memory_limit);
    } catch {
      refuse(source, 'memory_limit', 'a size (e.g. "128MB", or a number of bytes)');
    }
    resources.memory = bytes;
    readings.push({ field: 'memory_limit', raw: JSON.stringify(meta.memory_limit), source, read: `${formatSize(bytes)} of memory` });
  }
  if (meta.cpu_limit !== undefined) {
    const pct = cpuPercent(meta.cpu_limit, source);
    resources.cpuPercent = pct;
    readings.push({ field: 'cpu_limit', raw: JSON.stringify(meta.cpu_limit), source, read: `a CPU quota of ${pct}% of one core` });
  }
  return { resources, readings };
}

/** A JSON Schema for an older `inputs`/`outputs` field list: the fields, typed, required as marked. */
export function fieldListSchema(fields: z.infer<typeof FieldList>): object {
  const properties: Record<string, object> = {};
  for (const [name, f] of Object.entries(fields)) properties[name] = f.type ? { type: f.type } : {};
  const required = Object.entries(fields).filter(([, f]) => f.required).map(([n]) => n);
  return { type: 'object', properties, ...(required.length ? { required } : {}) };
}

/** meta.yaml `entrypoint`: a file to load, or the name of the function to call. */
export function readEntrypoint(value: string, source: string): { file: string } | { entry: string } {
  if (/\.[cm]?js$/.test(value) || value.includes('/')) {
    const parts = value.split('/');
    if (value.startsWith('/') || parts.some((p) => p === '..' || p === '.' || p === '')) refuse(source, 'entrypoint', 'a relative path inside the task directory');
    return { file: value };
  }
  if (!/^[A-Za-z_$][\w$]*$/.test(value)) refuse(source, 'entrypoint', 'a file name ending in .js or a function name');
  return { entry: value };
}
