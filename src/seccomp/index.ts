// The seccomp layer: policy -> one resolved profile -> BPF for bwrap and OCI JSON for runc/crun.
// A plan is built once per (resolved profile, libseccomp version) and kept in memory by its hash:
// compiling takes milliseconds, and the plan is a pure function of that input.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Policy, TrustLevel } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { compileBpf } from './compile.js';
import { libseccomp } from './libseccomp.js';
import { ociSeccomp, type OciSeccomp } from './oci.js';
import { shippedProfile, shippedProfileName, shippedProfilePath } from './profiles.js';
import { errnoName, hostTarget, resolveProfile, type Resolution, type ResolvedProfile, type Target } from './resolve.js';
import { SeccompProfile } from './schema.js';
import { ARCH_NAMES, type Arch } from './syscalls.js';

export { SeccompPolicy, SeccompProfile } from './schema.js';
export { syscallName } from './syscalls.js';
export { seccompViolation, auditSession, type AuditKey } from './classify.js';
export type { OciSeccomp } from './oci.js';

export interface SeccompPlan {
  /** "pawl-<level>" for a shipped profile, the file's path, or "inline". */
  name: string;
  /** sha256 of the resolved profile and the compiler: the cache key. */
  hash: string;
  /** Classic BPF for the host architecture, for `bwrap --seccomp FD`. */
  bpf: Buffer;
  /** The OCI runtime spec's linux.seccomp. */
  oci: OciSeccomp;
  /** A denied call kills the process (SIGSYS) rather than failing with an errno. */
  killsOnViolation: boolean;
}

// Bump when compile.ts changes what it emits for the same profile.
const COMPILER = 'pawl-seccomp/1';

// Levels where switching the filter off is refused: the code they run is not trusted.
const FILTER_REQUIRED: readonly TrustLevel[] = ['untrusted', 'limited'];

const KILLS = new Set(['SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS']);

interface Source {
  name: string;
  /** Where the profile was read from (none when inline). */
  path?: string;
  profile: SeccompProfile;
}

function parseProfile(doc: unknown, where: string): SeccompProfile {
  const r = SeccompProfile.safeParse(doc);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
  throw new PawlError('InvalidPolicy', `invalid seccomp profile ${where}: ${issues.join('; ')}`);
}

async function readProfileFile(path: string): Promise<SeccompProfile> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new PawlError('InvalidPolicy', `cannot load seccomp profile ${path}: ${(e as Error).message}`);
  }
  return parseProfile(doc, path);
}

/** The profile a policy asks for, or null for "none" (refused where a filter is required). */
async function sourceOf(policy: Policy): Promise<Source | null> {
  const p = policy.security.seccomp.profile;
  if (p === 'none') {
    if (FILTER_REQUIRED.includes(policy.trustLevel)) {
      throw new PawlError('InvalidPolicy', `security.seccomp.profile "none" is refused at trust level "${policy.trustLevel}": use trust level trusted or system to run without a filter`);
    }
    return null;
  }
  if (p === 'trust-level') {
    const level = policy.trustLevel;
    return { name: shippedProfileName(level), path: shippedProfilePath(level), profile: shippedProfile(level) };
  }
  if (typeof p === 'string') return { name: p, path: p, profile: await readProfileFile(p) };
  return { name: 'inline', profile: p };
}

function hashOf(p: ResolvedProfile): string {
  return createHash('sha256').update(JSON.stringify({ compiler: COMPILER, libseccomp: libseccomp().version, profile: p })).digest('hex');
}

const killsOn = (p: ResolvedProfile) => KILLS.has(p.defaultAction) || p.rules.some((r) => KILLS.has(r.action));

const plans = new Map<string, Omit<SeccompPlan, 'name'>>();

function planFor(source: Source, target: Target): SeccompPlan {
  const { profile } = resolveProfile(source.profile, target);
  const hash = hashOf(profile);
  let built = plans.get(hash);
  if (!built) {
    built = { hash, bpf: compileBpf(profile), oci: ociSeccomp(profile), killsOnViolation: killsOn(profile) };
    plans.set(hash, built);
  }
  return { name: source.name, ...built };
}

/** The filter of a run, or null when the policy says profile "none". Throws PawlError. */
export async function seccompPlan(policy: Policy): Promise<SeccompPlan | null> {
  const source = await sourceOf(policy);
  return source && planFor(source, hostTarget());
}

/** `pawl seccomp compile --profile FILE`: the BPF of a profile file, for this host. */
export async function compileProfileFile(path: string): Promise<Buffer> {
  return planFor({ name: path, profile: await readProfileFile(path) }, hostTarget()).bpf;
}

/** `pawl seccomp export --trust LEVEL`: the OCI linux.seccomp of a shipped profile. */
export function exportOci(level: TrustLevel, arch: Arch = hostTarget().arch): OciSeccomp {
  return ociSeccomp(resolveProfile(shippedProfile(level), { ...hostTarget(), arch }).profile);
}

function actionText(action: string, errnoRet?: number): string {
  if (action === 'SCMP_ACT_ALLOW') return 'allowed';
  if (action === 'SCMP_ACT_ERRNO') return `fail with ${errnoName(errnoRet ?? 1)}`;
  if (KILLS.has(action)) return 'kill the process (SIGSYS)';
  return action.replace('SCMP_ACT_', '').toLowerCase();
}

function summary(res: Resolution, source: Source): string[] {
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
    if (plain.length) lines.push(`${what}: ${plain.length > 24 ? `${plain.length} calls` : plain.join(', ')}`);
    if (cond.length) lines.push(`${what}, depending on arguments: ${cond.join(', ')}`);
  }
  if (res.absent.length) lines.push(`not on ${p.arch} (ignored): ${res.absent.length} names`);
  if (res.skipped.length) lines.push(`unknown, skipped (optional): ${res.skipped.join(', ')}`);
  return lines;
}

/** For `pawl explain`: which profile applies and what it does, without compiling it. */
export async function explainSeccomp(policy: Policy): Promise<{ name: string; hash: string | null; lines: string[] }> {
  const source = await sourceOf(policy);
  if (!source) return { name: 'none', hash: null, lines: ['no seccomp filter (security.seccomp.profile is "none")'] };
  const res = resolveProfile(source.profile, hostTarget());
  return { name: source.name, hash: hashOf(res.profile), lines: summary(res, source) };
}
