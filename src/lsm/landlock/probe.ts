// The kernel's Landlock ABI version (0: none), from landlock_create_ruleset(NULL, 0,
// LANDLOCK_CREATE_RULESET_VERSION). The sandbox runs on the same kernel, so the host's answer is
// the sandbox's (pawl's seccomp profiles allow the three Landlock calls).
import koffi from 'koffi';
import type { Policy } from '../../config/policy.js';
import { PawlError } from '../../errors.js';

const SYS_landlock_create_ruleset = 444; // x86_64 and arm64 (the generic syscall table) alike
const LANDLOCK_CREATE_RULESET_VERSION = 1;

let abi: number | null = null;

export function landlockAbi(): number {
  if (abi === null) {
    const syscall = koffi.load('libc.so.6').func('long syscall(long, void *, unsigned long, uint32_t)');
    const v = Number(syscall(SYS_landlock_create_ruleset, null, 0, LANDLOCK_CREATE_RULESET_VERSION));
    abi = v > 0 ? v : 0;
  }
  return abi;
}

/** The run's Landlock gap: [] when applied or off, ['landlock'] when optional and missing; refused when required. */
export function landlockDegraded(policy: Policy): string[] {
  if (policy.filesystem.landlock === 'off' || landlockAbi() > 0) return [];
  if (policy.filesystem.landlock === 'required') throw new PawlError('HostUnsupported', 'filesystem.landlock is "required" and this kernel has no Landlock (needs Linux 5.13+ with landlock in the lsm= list)');
  return ['landlock'];
}
