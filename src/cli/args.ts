// Argument parsing for the CLI: flags -> PolicyInput. Parsing only; validation of values
// (sizes, durations) happens once, in the zod schemas.
import type { ParseArgsConfig } from 'node:util';
import type { PolicyInput } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { NETWORK_OPTIONS, networkFromFlags } from './network-args.js';

export class UsageError extends PawlError {
  constructor(message: string) {
    super('InvalidPolicy', message);
  }
}

export const LIMIT_OPTIONS = {
  trust: { type: 'string' },
  memory: { type: 'string' },
  timeout: { type: 'string' },
  'cpu-time': { type: 'string' },
  cpu: { type: 'string' },
  pids: { type: 'string' },
  runtime: { type: 'string' },
  env: { type: 'string', multiple: true },
  ...NETWORK_OPTIONS,
} as const satisfies ParseArgsConfig['options'];

type Values = { [K in keyof typeof LIMIT_OPTIONS]?: (typeof LIMIT_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof LIMIT_OPTIONS)[K] extends { type: 'boolean' } ? boolean : string };

function integer(flag: string, v: string): number {
  if (!/^\d+$/.test(v.trim())) throw new UsageError(`--${flag} expects a whole number, got "${v}"`);
  return Number(v);
}

/** Flags -> per-run policy overrides. Sizes and durations stay strings for the schema to parse. */
export function policyFromFlags(v: Values, binds: PolicyInput['filesystem'] = undefined): PolicyInput {
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

/**
 * bwrap-style two-value flags (--ro-bind SRC DST, --bind SRC DST) taken out before parseArgs,
 * which only knows one-value options. Stops at "--": what follows is the program's own argv.
 */
export function takeBinds(args: string[]): { rest: string[]; binds: { src: string; dst: string; readOnly: boolean }[] } {
  const rest: string[] = [];
  const binds: { src: string; dst: string; readOnly: boolean }[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      rest.push(...args.slice(i));
      break;
    }
    if (a === '--ro-bind' || a === '--bind') {
      const [src, dst] = [args[i + 1], args[i + 2]];
      if (src === undefined || dst === undefined || src.startsWith('--') || dst.startsWith('--')) throw new UsageError(`${a} expects two paths: ${a} SRC DST`);
      binds.push({ src, dst, readOnly: a === '--ro-bind' });
      i += 2;
      continue;
    }
    rest.push(a);
  }
  return { rest, binds };
}

export function parseJsonInput(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${what} is not valid JSON: ${(e as Error).message}`);
  }
}
