// `pawl explain`: which seccomp profile a run gets and what it does, in a few lines, without
// compiling it. The lines describe the resolved profile, i.e. what the filter will decide.
import type { Policy } from '../config/policy.js';
import { filterHash } from './compile.js';
import { profileSource, type ProfileSource } from './profiles.js';
import { errnoName, hostTarget, resolveProfile, type Resolution } from './resolve.js';
import { KILL_ACTIONS } from '../config/seccomp.js';
import { ARCH_NAMES } from './syscalls.js';

function actionText(action: string, errnoRet?: number): string {
  if (action === 'SCMP_ACT_ALLOW') return 'allowed';
  if (action === 'SCMP_ACT_ERRNO') return `fail with ${errnoName(errnoRet ?? 1)}`;
  if (KILL_ACTIONS.has(action)) return 'kill the process (SIGSYS)';
  return action.replace('SCMP_ACT_', '').toLowerCase();
}

function summary(res: Resolution, source: ProfileSource): string[] {
  const p = res.profile;
  const groups = new Map<string, { plain: Set<string>; conditional: Set<string> }>();
  for (const r of p.rules) {
    const key = actionText(r.action, r.errnoRet);
    const g = groups.get(key) ?? { plain: new Set(), conditional: new Set() };
    r.names.forEach((n) => (r.args.length ? g.conditional : g.plain).add(n));
    groups.set(key, g);
  }
  const lines = [
    `profile: ${source.name}${source.path && source.path !== source.name ? ` (${source.path})` : ''}`,
    `architecture: ${ARCH_NAMES[p.arch].oci}; calls through other ABIs (x86, x32, arm) kill the process`,
    `calls not listed: ${actionText(p.defaultAction, p.defaultErrnoRet)}`,
  ];
  for (const [what, g] of groups) {
    const plain = [...g.plain];
    const cond = [...g.conditional];
    // The allowlist is long and well known; what is refused is what a reader looks for.
    if (plain.length) lines.push(`${what}: ${what === 'allowed' ? `${plain.length} calls` : plain.join(', ')}`);
    if (cond.length) lines.push(`${what}, depending on arguments: ${cond.join(', ')}`);
  }
  if (res.absent.length) lines.push(`not on ${p.arch} (ignored): ${res.absent.length} names`);
  if (res.skipped.length) lines.push(`unknown, skipped (optional): ${res.skipped.join(', ')}`);
  if (res.overridden.length) lines.push(`rules that never apply (an unconditional rule decides first): ${res.overridden.join(', ')}`);
  return lines;
}

export async function explainSeccomp(policy: Policy): Promise<{ name: string; hash: string | null; lines: string[] }> {
  const source = await profileSource(policy);
  if (!source) return { name: 'none', hash: null, lines: ['no seccomp filter (security.seccomp.profile is "none")'] };
  const res = resolveProfile(source.profile, hostTarget());
  return { name: source.name, hash: filterHash(res.profile), lines: summary(res, source) };
}
