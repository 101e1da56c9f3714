// Flags -> per-run policy overrides. Parsing only; validation of values (sizes, durations)
// happens once, in the zod schemas. Loaded with the command (main.ts), never for `pawl --help`.
import type { PolicyInput } from '../config/policy.js';
import { UsageError, type LIMIT_OPTIONS, type Values } from './args.js';
import { networkFromFlags } from './network-args.js';

function integer(flag: string, v: string): number {
  if (!/^\d+$/.test(v.trim())) throw new UsageError(`--${flag} expects a whole number, got "${v}"`);
  return Number(v);
}

/** Sizes and durations stay strings for the schema to parse. */
export function policyFromFlags(v: Values<typeof LIMIT_OPTIONS>, binds: PolicyInput['filesystem'] = undefined): PolicyInput {
  const resources: NonNullable<PolicyInput['resources']> = {};
  if (v.memory !== undefined) resources.memory = v.memory;
  if (v.timeout !== undefined) resources.wallTime = v.timeout;
  if (v['cpu-time'] !== undefined) resources.cpuTime = v['cpu-time'];
  if (v.pids !== undefined) resources.processes = integer('pids', v.pids);
  if (v.cpu !== undefined) resources.cpuPercent = integer('cpu', v.cpu.replace(/%$/, ''));
  const out: PolicyInput = { resources };
  const network = networkFromFlags(v);
  if (network) out.network = network;
  if (v.runtime !== undefined) out.runtime = v.runtime as 'bwrap';
  if (v.env?.length) {
    out.env = {};
    for (const kv of v.env) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new UsageError(`--env expects NAME=VALUE, got "${kv}"`);
      out.env[kv.slice(0, i)] = kv.slice(i + 1);
    }
  }
  if (binds) out.filesystem = binds;
  return out;
}
