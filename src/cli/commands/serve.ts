// `pawl serve`: flags -> ServiceConfig, signals -> the service's shutdown and reload, events ->
// one JSON line each on stderr. Everything else is the library (src/service).
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../args.js';
import { err, out } from '../output.js';

const OPTIONS = {
  socket: { type: 'string' },
  listen: { type: 'string' },
  'token-file': { type: 'string' },
  'task-root': { type: 'string', multiple: true },
  trust: { type: 'string' },
  'pool-size': { type: 'string' },
  'max-concurrent': { type: 'string' },
  'max-queue': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'cleanup-interval': { type: 'string' },
  'result-ttl': { type: 'string' },
  'max-body': { type: 'string' },
  'headers-timeout': { type: 'string' },
  'request-timeout': { type: 'string' },
  'run-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const SERVE_USAGE = `pawl serve [--socket PATH] [--listen HOST:PORT --token-file FILE] [--task-root DIR]... [--trust LEVEL]
             [--pool-size N] [--max-concurrent N] [--max-queue N] [--drain-timeout D] [--cleanup-interval D]
             [--result-ttl D] [--max-body SIZE] [--headers-timeout D] [--request-timeout D] [--run-dir DIR]`;

export async function serveCommand(args: string[]): Promise<number> {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options: OPTIONS, allowPositionals: false, strict: true }));
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\s*\n\s*/g, ' '));
  }
  if (values.help) {
    out(SERVE_USAGE);
    return 0;
  }
  const [{ parseDuration, parseSize }, { hostConfig }, { Service }] = await Promise.all([
    import('../../config/units.js'), import('../../config/host.js'), import('../../service/service.js'),
  ]);
  const one = (name: keyof typeof OPTIONS) => values[name] as string | undefined;
  const num = <T>(name: keyof typeof OPTIONS, parse: (v: string) => T): T | undefined => {
    const v = one(name);
    if (v === undefined) return undefined;
    try {
      return parse(v);
    } catch (e) {
      throw new UsageError(`--${name}: ${(e as Error).message}`);
    }
  };
  const int = (v: string) => {
    if (!/^\d+$/.test(v)) throw new Error(`expects a whole number, got "${v}"`);
    return Number(v);
  };
  if (one('listen') && !one('token-file')) throw new UsageError('--listen needs --token-file: TCP clients must send a bearer token (the unix socket is the unauthenticated way in)');
  const host = hostConfig(one('run-dir') ? { runDir: one('run-dir') } : {});
  const pool = Object.fromEntries(Object.entries({ size: num('pool-size', int), maxConcurrent: num('max-concurrent', int), maxQueue: num('max-queue', int) }).filter(([, v]) => v !== undefined));
  const service = new Service({
    host,
    config: {
      socket: one('socket') ?? join(host.stateDir, 'pawl.sock'),
      listen: one('listen'),
      tokenFile: one('token-file'),
      taskRoots: (values['task-root'] as string[] | undefined) ?? [],
      ...(one('trust') ? { trustLevel: one('trust') as never } : {}),
      pool,
      drainTimeoutMs: num('drain-timeout', parseDuration),
      cleanupIntervalMs: num('cleanup-interval', parseDuration),
      resultTtlMs: num('result-ttl', parseDuration),
      maxBodyBytes: num('max-body', parseSize),
      headersTimeoutMs: num('headers-timeout', parseDuration),
      requestTimeoutMs: num('request-timeout', parseDuration),
    },
    // reload: the operator configuration (security.yaml) is read again here once it is wired in;
    // until then SIGHUP re-reads the token file only, and policyFor is the --trust preset.
    log: (event) => err(JSON.stringify({ time: new Date().toISOString(), ...event })),
  });
  await service.start();
  await new Promise<void>((resolve) => {
    process.on('SIGHUP', () => void service.reload().catch((e: Error) => err(JSON.stringify({ event: 'reload_failed', message: e.message }))));
    const stop = () => void service.shutdown().then(() => resolve());
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}
