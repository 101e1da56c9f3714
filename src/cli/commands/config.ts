// `pawl config check FILE` and `pawl config show FILE --task NAME [--trust LEVEL] [--json]`:
// the operator's security.yaml, checked, and one task's effective policy with each value's source.
import { parseArgs } from 'node:util';
import { formatSize } from '../../config/units.js';
import { effectivePolicy, loadSecurityConfig, SecurityConfigError, type SecurityConfig } from '../../operator/index.js';
import { UsageError } from '../args.js';
import { err, out } from '../output.js';

const USAGE = 'usage: pawl config check FILE | pawl config show FILE --task NAME [--trust LEVEL] [--json]';

/** Keys whose numbers are bytes or milliseconds, printed in the form an operator writes. */
const BYTES = /^(resources\.(memory|diskReadBps|diskWriteBps|diskSpace|tmpSize|stdoutMax|stderrMax)|network\.bandwidth\.(down|up))$/;
const MILLIS = /^resources\.(wallTime|cpuTime)$/;

function show(path: string, v: unknown): string {
  if (typeof v === 'number' && BYTES.test(path)) return `${formatSize(v)}${path.startsWith('network.bandwidth') || /Bps$/.test(path) ? '/s' : ''}`;
  if (typeof v === 'number' && MILLIS.test(path)) return v % 1000 === 0 ? `${v / 1000}s` : `${v}ms`;
  return JSON.stringify(v);
}

function at(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], obj);
}

async function load(file: string): Promise<SecurityConfig | number> {
  try {
    return await loadSecurityConfig(file);
  } catch (e) {
    if (!(e instanceof SecurityConfigError)) throw e;
    for (const p of e.message.split('\n')) err(p);
    return 2;
  }
}

export async function configCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { task: { type: 'string' }, trust: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/\s*\n\s*/g, ' ')}\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  if ((sub !== 'check' && sub !== 'show') || positionals.length !== 1) throw new UsageError(USAGE);
  const config = await load(positionals[0]!);
  if (typeof config === 'number') return config;
  const doc = config.security;

  if (sub === 'check') {
    if (values.task !== undefined || values.json) throw new UsageError(USAGE);
    const rc = doc.runtime_config;
    out(`${config.file}: ok`);
    out(`  execution mode: ${rc.execution_mode}${rc.execution_mode === 'hybrid' ? ` (legacy for trust levels: ${rc.legacy_trust_levels.join(', ') || 'none'})` : ''}`);
    out(`  default limits: ${Object.keys(doc.default_limits ?? {}).length} set`);
    const names = Object.keys(doc.task_policies);
    out(`  task policies: ${names.length}`);
    for (const name of names) {
      const eff = effectivePolicy(config, { taskName: name });
      out(`    ${name}: trust ${eff.policy.trustLevel}, network ${eff.policy.network.mode}, memory ${formatSize(eff.policy.resources.memory)}, ${eff.mode}`);
    }
    for (const n of config.notes) out(`  note: ${n}`);
    return 0;
  }

  if (values.task === undefined) throw new UsageError(`pawl config show needs --task NAME\n${USAGE}`);
  const eff = effectivePolicy(config, { taskName: values.task, trustLevel: values.trust });
  const known = Object.hasOwn(doc.task_policies, values.task);
  if (values.json) {
    out(JSON.stringify({ task: values.task, in_config: known, trust_level: eff.policy.trustLevel, mode: eff.mode, mode_reason: eff.modeReason, policy: eff.policy, sources: eff.sources }, null, 2));
    return 0;
  }
  out(`task ${values.task}${known ? '' : ' (no entry in security.task_policies: defaults and default_limits)'}`);
  out(`mode ${eff.mode} (${eff.modeReason})`);
  const paths = Object.keys(eff.sources);
  const width = Math.min(48, Math.max(...paths.map((p) => `${p} = ${show(p, at(eff.policy, p))}`.length)));
  for (const p of paths) out(`${`${p} = ${show(p, at(eff.policy, p))}`.padEnd(width)}  <- ${eff.sources[p]}`);
  return 0;
}
