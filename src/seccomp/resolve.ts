// A profile as written -> the filter for one target (architecture + kernel): Docker's
// includes/excludes decided, errno names turned into numbers, names looked up. Both outputs (the
// BPF for bwrap and the OCI JSON for runc/crun) are made from this one value, so they agree.
import { constants, release } from 'node:os';
import { PawlError } from '../errors.js';
import type { Action, Arg, Condition, SeccompProfile, SeccompRule } from '../config/seccomp.js';
import { actionCode } from './libseccomp.js';
import { ARCH_NAMES, hostArch, resolveSyscall, type Arch } from './syscalls.js';

export interface Target {
  arch: Arch;
  /** [major, minor] of the kernel, for Docker's minKernel conditions. */
  kernel: [number, number];
}

export interface ResolvedRule {
  /** Names that exist on the target, in profile order. */
  names: string[];
  action: Action;
  /** Set for SCMP_ACT_ERRNO (the errno) and SCMP_ACT_TRACE (the message). */
  errnoRet?: number;
  args: Arg[];
}

export interface ResolvedProfile {
  arch: Arch;
  defaultAction: Action;
  defaultErrnoRet?: number;
  flags?: string[];
  rules: ResolvedRule[];
}

export interface Resolution {
  profile: ResolvedProfile;
  /** Real system calls the target architecture does not have (e.g. "_llseek" on x86_64). */
  absent: string[];
  /** Unknown names of rules marked optional. */
  skipped: string[];
  /** Calls with rules that never apply: an unconditional rule for the call decides first. */
  overridden: string[];
}

export function hostTarget(): Target {
  const m = /^(\d+)\.(\d+)/.exec(release());
  return { arch: hostArch(), kernel: m ? [Number(m[1]), Number(m[2])] : [0, 0] };
}

const EPERM = constants.errno.EPERM;

/** "EPERM" for 1, and so on. */
export const errnoName = (n: number) => Object.entries(constants.errno).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;

function atLeast(kernel: [number, number], min: string): boolean {
  const [major, minor] = min.split('.').map(Number) as [number, number];
  return kernel[0] > major || (kernel[0] === major && kernel[1] >= minor);
}

// Docker's semantics, with the capability set pawl always runs with: none.
function applies(r: SeccompRule, t: Target): boolean {
  const docker = ARCH_NAMES[t.arch].docker;
  const inc: Condition = r.includes ?? {};
  const exc: Condition = r.excludes ?? {};
  if (inc.arches?.length && !inc.arches.includes(docker)) return false;
  if (inc.caps?.length) return false;
  if (inc.minKernel && !atLeast(t.kernel, inc.minKernel)) return false;
  if (exc.arches?.includes(docker)) return false;
  if (exc.minKernel && atLeast(t.kernel, exc.minKernel)) return false;
  return true;
}

function errnoOf(action: Action, errnoRet: number | undefined, errnoName: string | undefined): number | undefined {
  if (action !== 'SCMP_ACT_ERRNO' && action !== 'SCMP_ACT_TRACE') return undefined;
  // The schema (config/seccomp.ts) refused an errnoRet and an errno name that disagree.
  const byName = errnoName === undefined ? undefined : constants.errno[errnoName as keyof typeof constants.errno];
  // The OCI runtime spec's default for both.
  return errnoRet ?? byName ?? EPERM;
}

/** Throws PawlError(InvalidPolicy) naming every unknown system call name. */
export function resolveProfile(p: SeccompProfile, target: Target): Resolution {
  const defaultErrnoRet = errnoOf(p.defaultAction, p.defaultErrnoRet, p.defaultErrno);
  const absent = new Set<string>();
  const skipped = new Set<string>();
  const unknown = new Set<string>();
  const rules: ResolvedRule[] = [];
  (p.syscalls ?? []).forEach((r, i) => {
    // Names are checked in every rule, applicable here or not: a typo is a typo on any target.
    const names: string[] = [];
    for (const name of r.names ?? (r.name ? [r.name] : [])) {
      const nr = resolveSyscall(name, target.arch);
      if (typeof nr === 'number') names.push(name);
      else if (nr === 'unknown') (r.optional ? skipped : unknown).add(name);
      else if (applies(r, target)) absent.add(name);
    }
    if (!applies(r, target)) return;
    const errnoRet = errnoOf(r.action, r.errnoRet, r.errno);
    // libseccomp refuses a rule that repeats the default action and runc skips it: same effect.
    if (actionCode(r.action, errnoRet) === actionCode(p.defaultAction, defaultErrnoRet)) return;
    // Rebuilt field by field: the hash of a resolved profile must not depend on key order.
    const args = (r.args ?? []).map(({ index, value, valueTwo, op }) => ({ index, value, valueTwo, op }));
    if (names.length) rules.push({ names, action: r.action, ...(errnoRet === undefined ? {} : { errnoRet }), args });
  });
  // libseccomp (so bwrap, runc and crun alike) lets the first unconditional rule of a call win
  // over every other rule for it, whatever their order. Keep only the rules that can decide, so
  // the OCI JSON and `pawl explain` show what the filter does, not what the file seems to say.
  const decided = new Map<string, ResolvedRule>();
  for (const r of rules) if (!r.args.length) for (const n of r.names) if (!decided.has(n)) decided.set(n, r);
  const overridden = new Set<string>();
  const live = rules.flatMap((r) => {
    const names = r.names.filter((n) => {
      const decides = (decided.get(n) ?? r) === r;
      if (!decides) overridden.add(n);
      return decides;
    });
    return names.length ? [{ ...r, names }] : [];
  });
  if (unknown.size) {
    throw new PawlError('InvalidPolicy', `seccomp profile: unknown system call name${unknown.size > 1 ? 's' : ''}: ${[...unknown].join(', ')} (mark the rule "optional": true to skip names this host does not know)`);
  }
  const profile: ResolvedProfile = {
    arch: target.arch,
    defaultAction: p.defaultAction,
    ...(defaultErrnoRet === undefined ? {} : { defaultErrnoRet }),
    ...(p.flags?.length ? { flags: p.flags } : {}),
    rules: live,
  };
  return { profile, absent: [...absent].sort(), skipped: [...skipped].sort(), overridden: [...overridden].sort() };
}
