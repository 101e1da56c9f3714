// defaults <- trust level preset <- task policy (security.yaml) <- per-run flags, parsed once.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { Policy, TrustLevel, type PolicyInput } from './policy.js';
import { TRUST_PRESETS } from './trust.js';
import { PawlError } from '../errors.js';

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
  return layers.reduce<unknown>((acc, l) => merge(acc, l ?? {}), {}) as PolicyInput;
}

export function formatZodError(err: z.ZodError, what: string): string {
  const lines = err.issues.map((i) => {
    const path = i.path.length ? i.path.join('.') : '(top level)';
    return `${path}: ${i.message}`;
  });
  return `invalid ${what}: ${lines.join('; ')}`;
}

/** Resolve the effective policy. Throws PawlError(InvalidPolicy) with every problem named. */
export function resolvePolicy(opts: { trustLevel?: string; task?: PolicyInput; overrides?: PolicyInput } = {}): Policy {
  const level = TrustLevel.safeParse(opts.trustLevel ?? opts.overrides?.trustLevel ?? opts.task?.trustLevel ?? 'limited');
  if (!level.success) {
    throw new PawlError('InvalidPolicy', `unknown trust level "${opts.trustLevel}": expected one of ${TrustLevel.options.join(', ')}`);
  }
  const merged = mergeInputs(TRUST_PRESETS[level.data], opts.task, opts.overrides, { trustLevel: level.data });
  const parsed = Policy.safeParse(merged);
  if (!parsed.success) throw new PawlError('InvalidPolicy', formatZodError(parsed.error, 'policy'));
  return parsed.data;
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
