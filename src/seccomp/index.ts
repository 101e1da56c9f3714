// The seccomp layer: policy -> one resolved profile -> BPF for bwrap and OCI JSON for runc/crun.
// A plan is built once per resolved profile (and libseccomp version) and kept in memory by its
// hash: compiling takes milliseconds, and the plan is a pure function of that input.
import type { Policy, TrustLevel } from '../config/policy.js';
import { compileBpf, filterHash } from './compile.js';
import { ociSeccomp, type OciSeccomp } from './oci.js';
import { profileSource, readProfileFile, shippedProfile, type ProfileSource } from './profiles.js';
import { hostTarget, resolveProfile, type ResolvedProfile } from './resolve.js';
import { KILL_ACTIONS, type SeccompProfile } from './schema.js';
import type { Arch } from './syscalls.js';

export { SeccompPolicy, SeccompProfile } from './schema.js';
export { syscallName } from './syscalls.js';
export { explainSeccomp } from './explain.js';
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
  /** Whether this filter answers the named call with EPERM (checks a task's claim of a refused call). */
  refusesWithEperm(name: string): boolean;
}

const killsOn = (p: ResolvedProfile) => KILL_ACTIONS.has(p.defaultAction) || p.rules.some((r) => KILL_ACTIONS.has(r.action));

const EPERM = 1;
/** Calls some rule answers with EPERM (conditions aside), or every unlisted call when that is the default. */
function epermCheck(p: ResolvedProfile): (name: string) => boolean {
  const listed = new Set(p.rules.flatMap((r) => r.names));
  const eperm = new Set(p.rules.filter((r) => r.action === 'SCMP_ACT_ERRNO' && r.errnoRet === EPERM).flatMap((r) => r.names));
  const byDefault = p.defaultAction === 'SCMP_ACT_ERRNO' && p.defaultErrnoRet === EPERM;
  return (name) => eperm.has(name) || (byDefault && !listed.has(name));
}

type Built = Omit<SeccompPlan, 'name'>;
const plans = new Map<string, Built>();
// Shipped profiles are parsed once per process, so their object identity is a key that skips
// resolving and hashing on every run.
const byProfile = new WeakMap<SeccompProfile, Built>();

/** The plan for this host. */
function planFor(source: ProfileSource): SeccompPlan {
  let built = byProfile.get(source.profile);
  if (!built) {
    const { profile } = resolveProfile(source.profile, hostTarget());
    const hash = filterHash(profile);
    built = plans.get(hash) ?? { hash, bpf: compileBpf(profile), oci: ociSeccomp(profile), killsOnViolation: killsOn(profile), refusesWithEperm: epermCheck(profile) };
    plans.set(hash, built);
    byProfile.set(source.profile, built);
  }
  return { name: source.name, ...built };
}

/** The filter of a run, or null when the policy says profile "none". Throws PawlError. */
export async function seccompPlan(policy: Policy): Promise<SeccompPlan | null> {
  const source = await profileSource(policy);
  return source && planFor(source);
}

/** `pawl seccomp compile --profile FILE`: the BPF of a profile file, for this host. */
export async function compileProfileFile(path: string): Promise<Buffer> {
  return planFor({ name: path, path, profile: await readProfileFile(path) }).bpf;
}

/** `pawl seccomp export --trust LEVEL`: the OCI linux.seccomp of a shipped profile. */
export function exportOci(level: TrustLevel, arch: Arch = hostTarget().arch): OciSeccomp {
  return ociSeccomp(resolveProfile(shippedProfile(level), { ...hostTarget(), arch }).profile);
}
