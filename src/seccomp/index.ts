// The seccomp layer: policy -> one resolved profile -> BPF for bwrap and OCI JSON for runc/crun.
// A plan is built once per resolved profile (and libseccomp version) and kept in memory by its
// hash: compiling takes milliseconds, and the plan is a pure function of that input.
import { FILTER_REQUIRED, type Policy, type TrustLevel } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { compileBpf, COMPILER, filterHash } from './compile.js';
import type { FactsCache } from '../hostfacts/cache.js';
import { seccompKey } from '../hostfacts/facts.js';
import { ociSeccomp, type OciSeccomp } from './oci.js';
import { profileSource, readProfileFile, shippedProfile, type ProfileSource } from './profiles.js';
import { hostTarget, resolveProfile, type ResolvedProfile } from './resolve.js';
import { KILL_ACTIONS, type SeccompProfile } from '../config/seccomp.js';
import type { Arch } from './syscalls.js';

export { SeccompPolicy, SeccompProfile } from '../config/seccomp.js';
export { syscallName } from './syscalls.js';
export { explainSeccomp } from './explain.js';
export { auditSession, type AuditKey } from './classify.js';
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
  /** Whether this filter lets the named call through whatever its arguments. */
  allows(name: string): boolean;
  /** Every call the profile does not name is allowed (its defaultAction is SCMP_ACT_ALLOW or _LOG). */
  allowsByDefault: boolean;
}

const killsOn = (p: ResolvedProfile) => KILL_ACTIONS.has(p.defaultAction) || p.rules.some((r) => KILL_ACTIONS.has(r.action));

const EPERM = 1;
const LETS_THROUGH = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG']);
/** What decides which calls the filter answers with EPERM or lets through: plain data, so it can be cached on disk. */
interface EpermFacts { eperm: string[]; listed: string[]; byDefault: boolean; allowed: string[]; allowsByDefault: boolean }
/** Calls some rule answers with EPERM (conditions aside), or every unlisted call when that is the default. */
function epermFacts(p: ResolvedProfile): EpermFacts {
  const listed = [...new Set(p.rules.flatMap((r) => r.names))];
  // Let through whatever the arguments: only by unconditional rules, and by no other rule of the call.
  const other = new Set(p.rules.filter((r) => !LETS_THROUGH.has(r.action) || r.args.length > 0).flatMap((r) => r.names));
  return {
    listed,
    eperm: [...new Set(p.rules.filter((r) => r.action === 'SCMP_ACT_ERRNO' && r.errnoRet === EPERM).flatMap((r) => r.names))],
    byDefault: p.defaultAction === 'SCMP_ACT_ERRNO' && p.defaultErrnoRet === EPERM,
    allowed: listed.filter((n) => !other.has(n)),
    allowsByDefault: LETS_THROUGH.has(p.defaultAction),
  };
}
function epermCheck(f: EpermFacts): (name: string) => boolean {
  const listed = new Set(f.listed);
  const eperm = new Set(f.eperm);
  return (name) => eperm.has(name) || (f.byDefault && !listed.has(name));
}
function allowCheck(f: EpermFacts): (name: string) => boolean {
  const listed = new Set(f.listed);
  const allowed = new Set(f.allowed);
  return (name) => allowed.has(name) || (f.allowsByDefault && !listed.has(name));
}

type Built = Omit<SeccompPlan, 'name' | 'refusesWithEperm' | 'allows' | 'allowsByDefault'> & { eperm: EpermFacts };
const plans = new Map<string, Built>();
// Shipped profiles are parsed once per process, so their object identity is a key that skips
// resolving and hashing on every run.
const byProfile = new WeakMap<SeccompProfile, Built>();

/** The plan for this host; with `facts`, compiled filters are also kept on disk by content hash. */
function planFor(source: ProfileSource, facts?: FactsCache): SeccompPlan {
  let built = byProfile.get(source.profile);
  if (!built) {
    // On disk by content hash too: a fresh process (every CLI command) then skips resolving,
    // hashing and compiling, and loading libseccomp at all.
    const key = facts && seccompKey(COMPILER, JSON.stringify(source.profile));
    const hit = key ? facts!.get<Omit<Built, 'bpf'> & { bpf: string }>(`seccomp-${key.slice(0, 32)}`, key) : undefined;
    built = hit ? { ...hit, bpf: Buffer.from(hit.bpf, 'base64') } : compiled(source);
    if (key && !hit) facts!.set(`seccomp-${key.slice(0, 32)}`, key, { ...built, bpf: built.bpf.toString('base64') });
    plans.set(built.hash, built);
    byProfile.set(source.profile, built);
  }
  return { name: source.name, ...built, refusesWithEperm: epermCheck(built.eperm), allows: allowCheck(built.eperm), allowsByDefault: built.eperm.allowsByDefault };
}

function compiled(source: ProfileSource): Built {
  const { profile } = resolveProfile(source.profile, hostTarget());
  const hash = filterHash(profile);
  return plans.get(hash) ?? { hash, bpf: compileBpf(profile), oci: ociSeccomp(profile), killsOnViolation: killsOn(profile), eperm: epermFacts(profile) };
}

/** The filter of a run, or null when the policy says profile "none". Throws PawlError. */
export async function seccompPlan(policy: Policy, facts?: FactsCache): Promise<SeccompPlan | null> {
  const source = await profileSource(policy);
  const plan = source && planFor(source, facts);
  // The schema refuses "none" where a filter is required; a profile that allows every call it
  // does not name is that, spelled otherwise (a deny list cannot keep up with new calls).
  if (plan?.allowsByDefault && FILTER_REQUIRED.includes(policy.trustLevel)) {
    throw new PawlError('InvalidPolicy', `security.seccomp.profile ${plan.name}: its defaultAction lets every call it does not name through, which is refused at trust level "${policy.trustLevel}" (as "none" is): list the calls to allow and deny the rest, or use trust level trusted or system`);
  }
  return plan;
}

/** `pawl seccomp compile --profile FILE`: the BPF of a profile file, for this host. */
export async function compileProfileFile(path: string): Promise<Buffer> {
  return planFor({ name: path, path, profile: await readProfileFile(path) }).bpf;
}

/** `pawl seccomp export --trust LEVEL`: the OCI linux.seccomp of a shipped profile. */
export function exportOci(level: TrustLevel, arch: Arch = hostTarget().arch): OciSeccomp {
  return ociSeccomp(resolveProfile(shippedProfile(level), { ...hostTarget(), arch }).profile);
}
