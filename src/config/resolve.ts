// defaults <- trust level preset <- task policy (security.yaml) <- per-run flags, parsed once.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { Policy, TrustLevel, type PolicyInput, type ResourceLimits } from './policy.js';
import { TRUST_PRESETS } from './trust.js';
import { PawlError } from '../errors.js';
import { MAX_DURATION_MS, parseDuration, parseSize } from './units.js';

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge of raw policy inputs: objects merge key by key, anything else is replaced. */
export function mergeInputs(...layers: (PolicyInput | undefined)[]): PolicyInput {
  const merge = (a: unknown, b: unknown): unknown => {
    if (!isPlain(a) || !isPlain(b)) return b === undefined ? a : b;
    const out: Plain = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = merge(a[k], v);
    return out;
  };
  for (const l of layers) refuseProtoKeys(l);
  return layers.reduce<unknown>((acc, l) => merge(acc, l ?? {}), {}) as PolicyInput;
}

/**
 * JSON and YAML make "__proto__" an own key; merged, it would set an object's prototype, and the
 * schema's records drop it without a word (a security.yaml env var that silently was not there).
 */
function refuseProtoKeys(v: unknown, depth = 0): void {
  if (typeof v !== 'object' || v === null || depth > 64) return;
  if (Object.hasOwn(v, '__proto__')) throw new PawlError('InvalidPolicy', 'a "__proto__" key is refused in a policy (it would be dropped, not kept)');
  for (const child of Object.values(v)) refuseProtoKeys(child, depth + 1);
}

export function formatZodError(err: z.ZodError, what: string): string {
  const lines = err.issues.map((i) => {
    const path = i.path.length ? i.path.join('.') : '(top level)';
    return `${path}: ${i.message}`;
  });
  return `invalid ${what}: ${lines.join('; ')}`;
}

/** What a task's own policy (metadata.json limits, security.yaml) may set. */
const TASK_FIELDS = new Set(['resources', 'env']);
/** Limits where more is looser: a task may lower them below its trust level, never raise them. */
const CEILINGS = [
  'memory', 'cpuPercent', 'processes', 'fileDescriptors', 'wallTime', 'cpuTime', 'diskReadBps',
  'diskWriteBps', 'diskSpace', 'diskInodes', 'tmpSize', 'stdoutMax', 'stderrMax',
] as const satisfies readonly (keyof ResourceLimits)[];

function parsePolicy(input: PolicyInput, what: string): Policy {
  const parsed = Policy.safeParse(input);
  if (!parsed.success) throw new PawlError('InvalidPolicy', formatZodError(parsed.error, what));
  return parsed.data;
}

/** A value parsed, or null when it does not parse (the policy's own parse then names it). */
function lenient(parse: () => number): number | null {
  try {
    return parse();
  } catch {
    return null;
  }
}

/**
 * The task's layer, checked and clamped: the trust level is the operator's ceiling, so a task can
 * only tighten it (its 2GB memory_limit under "untrusted" gets 64MB). Everything else (seccomp,
 * network, binds, runtime, the trust level itself) is the operator's, set by run overrides.
 */
function taskLayer(level: TrustLevel, task: PolicyInput | undefined): PolicyInput {
  if (!task) return {};
  const foreign = Object.keys(task).filter((k) => !TASK_FIELDS.has(k));
  if (foreign.length) {
    throw new PawlError('InvalidPolicy', `a task's own policy may set only ${[...TASK_FIELDS].join(' and ')}; ${foreign.join(', ')} ${foreign.length > 1 ? 'are' : 'is'} for the operator (run options)`);
  }
  const ceiling = parsePolicy(mergeInputs(TRUST_PRESETS[level], { trustLevel: level }), 'policy').resources;
  const own = { ...task.resources };
  // A task's longer time than any timer waits is clamped, as any looser limit of its own is (by
  // its level's ceiling below); the operator's is refused instead.
  for (const key of ['wallTime', 'cpuTime'] as const) {
    const v = own[key];
    const ms = v === undefined ? null : lenient(() => parseDuration(v, Infinity));
    if (ms !== null && ms > MAX_DURATION_MS) own[key] = MAX_DURATION_MS;
  }
  // A task that lowers its memory below its level's /tmp gets a /tmp that fits (half its memory):
  // Ratchet's memory_limit "32MB" was refused, the default /tmp (50MB) no longer fitting.
  const lowered = own.memory;
  const memory = lowered === undefined ? null : lenient(() => parseSize(lowered));
  if (memory !== null && own.tmpSize === undefined && ceiling.tmpSize >= memory) own.tmpSize = Math.max(64 * 1024, Math.floor(memory / 2 / 4096) * 4096);
  const asked = parsePolicy(mergeInputs(TRUST_PRESETS[level], { resources: own, trustLevel: level }), "task's policy").resources;
  const resources: Partial<Record<keyof ResourceLimits, number>> = {};
  for (const key of Object.keys(own) as (keyof ResourceLimits)[]) {
    if (!(CEILINGS as readonly string[]).includes(key)) throw new PawlError('InvalidPolicy', `a task's own policy cannot set resources.${key}; it is for the operator`);
    resources[key] = Math.min(asked[key as (typeof CEILINGS)[number]], ceiling[key as (typeof CEILINGS)[number]]);
  }
  return { resources, ...(task.env ? { env: task.env } : {}) };
}

/**
 * Resolve the effective policy: defaults <- trust level <- the task's own policy (only tighter)
 * <- run overrides (the operator's, anything goes). Throws PawlError(InvalidPolicy) naming every
 * problem.
 */
export function resolvePolicy(opts: { trustLevel?: string; task?: PolicyInput; overrides?: PolicyInput } = {}): Policy {
  // Pure over its inputs, and zod's parses were ~0.5 ms of every pooled dispatch: the last
  // RESOLVED_KEPT answers are kept by their inputs' JSON (inputs that are not JSON are not kept;
  // a refusal never is), and each caller gets a copy of its own to change.
  let key: string | null = null;
  try {
    key = JSON.stringify([opts.trustLevel ?? null, opts.task ?? null, opts.overrides ?? null], exactJson);
  } catch {
    /* not exactly JSON (undefined, NaN, a function, a BigInt, a cycle): resolved every time, refused as ever */
  }
  const known = key === null ? undefined : resolved.get(key);
  if (known) return structuredClone(known);
  const policy = resolveUncached(opts);
  if (key !== null) {
    if (resolved.size >= RESOLVED_KEPT) resolved.delete(resolved.keys().next().value!);
    resolved.set(key, structuredClone(policy));
  }
  return policy;
}
const resolved = new Map<string, Policy>();
const RESOLVED_KEPT = 64;
/**
 * JSON.stringify's replacer for a key that means exactly its input: what JSON would drop or change
 * throws (undefined, functions, NaN, -0; a value a toJSON replaced, as a Date's; anything but a
 * plain object or array, as a Map, which JSON writes as {}; an inherited value it would not see).
 */
function exactJson(this: Record<string, unknown>, k: string, v: unknown): unknown {
  const own = k === '' || Object.prototype.hasOwnProperty.call(this, k);
  if (!own || this[k] !== v || v === undefined || typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint') throw new TypeError('not exactly JSON');
  if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))) throw new TypeError('not exactly JSON');
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) throw new TypeError('not exactly JSON');
    if (Object.getOwnPropertySymbols(v).length) throw new TypeError('not exactly JSON');
  }
  return v;
}

function resolveUncached(opts: { trustLevel?: string; task?: PolicyInput; overrides?: PolicyInput }): Policy {
  const level = TrustLevel.safeParse(opts.trustLevel ?? opts.overrides?.trustLevel ?? 'limited');
  if (!level.success) {
    throw new PawlError('InvalidPolicy', `unknown trust level "${opts.trustLevel}": expected one of ${TrustLevel.options.join(', ')}`);
  }
  return parsePolicy(mergeInputs(TRUST_PRESETS[level.data], taskLayer(level.data, opts.task), opts.overrides, { trustLevel: level.data }), 'policy');
}

/** Load a task's security.yaml (a PolicyInput). Missing file: undefined. */
export async function loadPolicyFile(path: string): Promise<PolicyInput | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PawlError('InvalidPolicy', `cannot read ${path}: ${(e as Error).message}`);
  }
  // yaml (~270 KB bundled) loads only for a task that has this file.
  const { parse: parseYaml } = await import('yaml');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new PawlError('InvalidPolicy', `${path} is not valid YAML: ${(e as Error).message}`);
  }
  if (doc == null) return {};
  if (!isPlain(doc)) throw new PawlError('InvalidPolicy', `${path} must hold a mapping of policy fields`);
  return doc as PolicyInput;
}
