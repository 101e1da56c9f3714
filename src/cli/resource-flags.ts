// Limit flags -> policy.resources (parsing only: sizes and durations stay strings for the schema
// to parse). No zod here: `pawl run --server` sends these to the service without loading it.
import type { PolicyInput } from '../config/policy.js';
import { UsageError, type LIMIT_OPTIONS, type Values } from './args.js';

function integer(flag: string, v: string): number {
  if (!/^\d+$/.test(v.trim())) throw new UsageError(`--${flag} expects a whole number, got "${v}"`);
  return Number(v);
}

export function resourcesFromFlags(v: Values<typeof LIMIT_OPTIONS>): NonNullable<PolicyInput['resources']> {
  const resources: NonNullable<PolicyInput['resources']> = {};
  if (v.memory !== undefined) resources.memory = v.memory;
  if (v.timeout !== undefined) resources.wallTime = v.timeout;
  if (v['cpu-time'] !== undefined) resources.cpuTime = v['cpu-time'];
  if (v.pids !== undefined) resources.processes = integer('pids', v.pids);
  if (v.cpu !== undefined) resources.cpuPercent = integer('cpu', v.cpu.replace(/%$/, ''));
  return resources;
}

/** --env NAME=VALUE pairs. */
export function envFromFlags(pairs: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of pairs) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--env expects NAME=VALUE, got "${kv}"`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}
