// The kernel's Landlock ABI version (0: none), from landlock_create_ruleset(NULL, 0,
// LANDLOCK_CREATE_RULESET_VERSION). The sandbox runs on the same kernel, so the host's answer is
// the sandbox's (pawl's seccomp profiles allow the three Landlock calls).
import type { Policy } from '../../config/policy.js';
import { PawlError } from '../../errors.js';
import { lastErrno, loadLibc } from '../../util/libc.js';

const SYS_landlock_create_ruleset = 444; // x86_64 and arm64 (the generic syscall table) alike
const LANDLOCK_CREATE_RULESET_VERSION = 1;

let probed: { abi: number } | { errno: string } | null = null;

/** Landlock's ABI version (landlock_create_ruleset(NULL, 0, VERSION)), or the errno why not (once per process). */
export function landlockProbe(): { abi: number } | { errno: string } {
  if (probed === null) {
    const r = loadLibc().syscall3(SYS_landlock_create_ruleset, null, 0, LANDLOCK_CREATE_RULESET_VERSION);
    const n = r >= 0 ? 0 : lastErrno();
    probed = r > 0 ? { abi: r } : { errno: n === 38 ? 'ENOSYS' : n === 95 ? 'EOPNOTSUPP' : `errno ${n}` };
  }
  return probed;
}

/** The ABI version, 0 when this kernel has no Landlock. */
export function landlockAbi(): number {
  const p = landlockProbe();
  return 'abi' in p ? p.abi : 0;
}

// openat2: the launcher opens each rule's path with RESOLVE_NO_SYMLINKS (landlock-exec.c).
const LANDLOCK_CALLS = ['landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self', 'openat2'];

/**
 * The run's Landlock gap from its seccomp filter (`allows`: does it let a call through; null: no
 * filter): the launcher makes these calls inside the sandbox, so an operator's
 * profile that does not allow them would leave the task without Landlock, which the launcher
 * alone cannot report (optional: it runs the task without; required: it exits 126, the task's
 * status). Known here instead: named in `degraded` when optional, refused when required.
 */
export function landlockFilteredOut(policy: Policy, allows: ((name: string) => boolean) | null): string[] {
  if (policy.filesystem.landlock === 'off' || landlockAbi() === 0 || !allows) return [];
  const denied = LANDLOCK_CALLS.filter((n) => !allows(n));
  if (!denied.length) return [];
  if (policy.filesystem.landlock === 'required') throw new PawlError('InvalidPolicy', `filesystem.landlock is "required" but the seccomp profile does not allow ${denied.join(', ')}: Landlock could not be applied in the sandbox`);
  return [`landlock: the seccomp profile does not allow ${denied.join(', ')}; the task runs without Landlock (filesystem.landlock is optional)`];
}

/** The run's Landlock gap: [] when applied or off, ['landlock'] when optional and missing; refused when required. */
export function landlockDegraded(policy: Policy): string[] {
  if (policy.filesystem.landlock === 'off' || landlockAbi() > 0) return [];
  if (policy.filesystem.landlock === 'required') throw new PawlError('HostUnsupported', 'filesystem.landlock is "required" and this kernel has no Landlock (needs Linux 5.13+ with landlock in the lsm= list)');
  return ['landlock'];
}
