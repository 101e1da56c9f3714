// Flags -> per-run policy overrides. Parsing only; validation of values (sizes, durations)
// happens once, in the zod schemas. Loaded with the command (main.ts), never for `pawl --help`.
import type { PolicyInput } from '../config/policy.js';
import type { LIMIT_OPTIONS, Values } from './args.js';
import { networkFromFlags } from './network-args.js';
import { envFromFlags, resourcesFromFlags } from './resource-flags.js';

/** Sizes and durations stay strings for the schema to parse. */
export function policyFromFlags(v: Values<typeof LIMIT_OPTIONS>, binds: PolicyInput['filesystem'] = undefined): PolicyInput {
  const out: PolicyInput = { resources: resourcesFromFlags(v) };
  const network = networkFromFlags(v);
  if (network) out.network = network;
  if (v.runtime !== undefined) out.runtime = v.runtime as 'bwrap';
  if (v.env?.length) out.env = envFromFlags(v.env);
  if (binds) out.filesystem = binds;
  return out;
}
