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
  'result-memory': { type: 'string' },
  'max-body': { type: 'string' },
  'headers-timeout': { type: 'string' },
  'request-timeout': { type: 'string' },
  'run-dir': { type: 'string' },
  config: { type: 'string' },
  'audit-log': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const SERVE_USAGE = `pawl serve [--socket PATH] [--listen HOST:PORT --token-file FILE] [--task-root DIR]... [--trust LEVEL]
             [--pool-size N] [--max-concurrent N] [--max-queue N] [--drain-timeout D] [--cleanup-interval D]
             [--result-ttl D] [--result-memory SIZE] [--max-body SIZE] [--headers-timeout D] [--request-timeout D] [--run-dir DIR]
             [--config security.yaml] [--audit-log FILE]
  --config: each task's policy from the operator's security.yaml (task_policies by the task's dir name,
  inline tasks as "inline"), the pool and cleanup settings from its runtime_config; SIGHUP reads it again.
  Flags given on the command line win over runtime_config.`;

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
  const operator = one('config') ? await operatorConfig(one('config')!) : null;
  const settings = operator?.settings;
  const flagsPool = Object.fromEntries(Object.entries({ size: num('pool-size', int), maxConcurrent: num('max-concurrent', int), maxQueue: num('max-queue', int) }).filter(([, v]) => v !== undefined));
  const pool = { ...(settings?.pool ?? {}), ...flagsPool };
  const auditFile = one('audit-log') ?? settings?.auditLog;
  if (auditFile) {
    const { openAuditLog, setAuditLog } = await import('../../audit/index.js');
    setAuditLog(openAuditLog(auditFile));
  }
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
      cleanupIntervalMs: num('cleanup-interval', parseDuration) ?? settings?.cleanupIntervalMs,
      resultTtlMs: num('result-ttl', parseDuration),
      maxResultBytes: num('result-memory', parseSize),
      maxBodyBytes: num('max-body', parseSize),
      headersTimeoutMs: num('headers-timeout', parseDuration),
      requestTimeoutMs: num('request-timeout', parseDuration),
    },
    ...(operator ? { policyFor: operator.policyFor, reload: async () => ({ policyFor: (await operatorConfig(one('config')!)).policyFor }) } : {}),
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

/**
 * The operator's security.yaml as the service's policy source: a task's effective policy (its
 * task_policies entry over the trust preset), then the caller's request, which may only tighten it.
 * The service always sandboxes: a task the config marks for legacy execution runs sandboxed here.
 */
async function operatorConfig(file: string) {
  const [{ loadSecurityConfig, effectivePolicy, runtimeSettings }, { applyCallerPolicy }] = await Promise.all([
    import('../../operator/index.js'), import('../../service/caller-policy.js'),
  ]);
  const config = await loadSecurityConfig(file);
  const policyFor = (taskName: string, caller: Parameters<typeof applyCallerPolicy>[1]) => applyCallerPolicy(effectivePolicy(config, { taskName }).policy, caller);
  return { policyFor, settings: runtimeSettings(config) };
}
