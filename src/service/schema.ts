// What `pawl serve` accepts from a client, and the service's own settings: zod is the only
// source of their defaults and types. Everything a client sends is hostile: strict objects,
// bounded strings, and no field that names a host path outside the operator's task roots.
import { z } from 'zod';
import { PoolConfig } from '../pool/config.js';
import { TrustLevel } from '../config/policy.js';
import { Duration, MAX_DURATION_MS, Size } from '../config/units.js';

/** JSON.parse makes "__proto__" an own key, which zod's records drop without a word: refused instead. */
function noProtoKey(v: unknown): boolean {
  return typeof v !== 'object' || v === null || !Object.hasOwn(v, '__proto__');
}
const PROTO_MESSAGE = { message: 'a "__proto__" key is refused (it would be dropped, not kept)' };

/** Fields of a policy a caller may send; service/caller-policy.ts says what each may do. */
export const CallerPolicy = z.strictObject({
  /** Only the service's level or a stricter one (untrusted < limited < trusted < system). */
  trustLevel: TrustLevel.optional(),
  /** Only lower than the service's values (sizes and durations in human form or numbers). */
  resources: z.strictObject({
    memory: Size.optional(),
    cpuPercent: z.number().positive().optional(),
    processes: z.number().int().min(1).optional(),
    fileDescriptors: z.number().int().min(16).optional(),
    wallTime: Duration.optional(),
    cpuTime: Duration.optional(),
    diskSpace: Size.optional(),
    tmpSize: Size.optional(),
    stdoutMax: Size.optional(),
    stderrMax: Size.optional(),
  }).optional(),
  /** Only "none" (or the service's own mode, a no-op). */
  network: z.strictObject({ mode: z.enum(['none', 'restricted', 'full']) }).optional(),
  /** New variable names only: a caller cannot replace a variable the service sets. */
  env: z.unknown().refine(noProtoKey, PROTO_MESSAGE).pipe(z.record(z.string().max(256), z.string().max(64 * 1024))).optional(),
});
export type CallerPolicy = z.infer<typeof CallerPolicy>;

/**
 * A JSON Schema given inline: an object, checked by the task loader's bounded compiler. Taken as
 * sent: a record would drop a "__proto__" key silently (the schema then meaning something else).
 */
const InlineSchema = z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'must be a JSON Schema object').refine(noProtoKey, PROTO_MESSAGE);

export const InlineTask = z.strictObject({
  source: z.string().min(1),
  input_schema: InlineSchema.optional(),
  output_schema: InlineSchema.optional(),
});

export const RunRequest = z.strictObject({
  /** An absolute path under one of the service's task roots, or the task itself. */
  task: z.union([z.string().min(1).max(4096), InlineTask]),
  input: z.unknown().optional(),
  /** Parsed by service/caller-policy.ts, which tells a field the caller may not set (403) from a malformed one (422). */
  policy: z.unknown().optional(),
  /** true: answer with the result when the run ends; false: answer 202 {id} at once. */
  wait: z.boolean().default(true),
});
export type RunRequest = z.infer<typeof RunRequest>;

export const ServiceConfig = z.strictObject({
  /** The unix socket (mode 0660). */
  socket: z.string().min(1),
  /** TCP HOST:PORT besides the socket; only with tokenFile. */
  listen: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be HOST:PORT').optional(),
  /** A file holding the bearer token TCP clients must send (not readable by others). */
  tokenFile: z.string().optional(),
  /** Directories path tasks must lie under (after resolving links); none: inline tasks only. */
  taskRoots: z.array(z.string().startsWith('/')).default([]),
  /** The trust level of every run unless policyFor says otherwise. */
  trustLevel: TrustLevel.default('limited'),
  pool: PoolConfig.prefault({}),
  /** A request body larger than this is refused with 413. */
  maxBodyBytes: z.number().int().min(1024).default(1024 * 1024),
  /** A client must send its headers within this, and its whole request within requestTimeoutMs. */
  headersTimeoutMs: z.number().int().min(100).max(MAX_DURATION_MS).default(10_000),
  requestTimeoutMs: z.number().int().min(100).max(MAX_DURATION_MS).default(30_000),
  /** SIGTERM: running runs may finish within this; then they are killed and reported. */
  drainTimeoutMs: z.number().int().min(0).max(MAX_DURATION_MS).default(30_000),
  /** gc of dead runs' leftovers, and expiry of finished results kept in memory. */
  cleanupIntervalMs: z.number().int().min(1000).max(MAX_DURATION_MS).default(600_000),
  resultTtlMs: z.number().int().min(1000).max(MAX_DURATION_MS).default(3_600_000),
  /** Finished runs kept at most (oldest dropped first); GET /v1/runs lists at most listLimit. */
  maxResults: z.number().int().min(1).default(10_000),
  /** Bytes of finished results kept in memory together (their JSON), oldest dropped first. */
  maxResultBytes: z.number().int().min(1).default(256 * 1024 * 1024),
  listLimit: z.number().int().min(1).max(10_000).default(100),
});
export type ServiceConfig = z.infer<typeof ServiceConfig>;
export type ServiceConfigInput = z.input<typeof ServiceConfig>;
