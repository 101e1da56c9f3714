// What main.ts needs to parse argv before it knows the command: the option tables and the
// parsing helpers. Nothing here may import zod or the library (`pawl --help` loads only this,
// test/unit/cli-startup.test.ts checks it); flags become a policy in policy-flags.ts, loaded
// with the command.
import type { ParseArgsConfig } from 'node:util';
import { PawlError } from '../errors.js';

export class UsageError extends PawlError {
  constructor(message: string) {
    super('InvalidPolicy', message);
  }
}

export const NETWORK_OPTIONS = {
  network: { type: 'string' },
  'allow-host': { type: 'string', multiple: true },
  'allow-port': { type: 'string', multiple: true },
  'block-host': { type: 'string', multiple: true },
  dns: { type: 'string', multiple: true },
  'net-down': { type: 'string' },
  'net-up': { type: 'string' },
  'net-connections': { type: 'string' },
  'net-over-limit': { type: 'string' },
  'force-full-network': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

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

/** What parseArgs returns for a table of options. */
export type Values<O extends ParseArgsConfig['options']> = { [K in keyof O]?: O[K] extends { multiple: true } ? string[] : O[K] extends { type: 'boolean' } ? boolean : string };

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
