// System call names <-> numbers for the architectures pawl filters (x86_64, aarch64).
// libseccomp's own tables come first; it also knows names that exist only on other
// architectures (e.g. "_llseek", "s390_pci_mmio_read"), which Docker's profile lists and which are
// simply absent here. Linux has given every new system call the same number on all
// architectures since 5.1, so the calls newer than this host's libseccomp (2.5.4 knows up to
// futex_requeue, 456) fit one small table valid for both.
import { libseccomp, SCMP } from './libseccomp.js';
import { hostLacks } from '../hostfacts/capabilities.js';

export type Arch = 'x86_64' | 'aarch64';
export const ARCHES = ['x86_64', 'aarch64'] as const satisfies readonly Arch[];

/** Per architecture: its OCI name and the name Docker profiles use in includes/excludes.arches. */
export const ARCH_NAMES: Record<Arch, { oci: string; docker: string }> = {
  x86_64: { oci: 'SCMP_ARCH_X86_64', docker: 'amd64' },
  aarch64: { oci: 'SCMP_ARCH_AARCH64', docker: 'arm64' },
};

// From the kernel's scripts/syscall.tbl (the "common" entries, identical on x86_64 and aarch64).
const NEWER: Record<string, number> = {
  statmount: 457, listmount: 458, lsm_get_self_attr: 459, lsm_set_self_attr: 460, lsm_list_modules: 461,
  mseal: 462, setxattrat: 463, getxattrat: 464, listxattrat: 465, removexattrat: 466, open_tree_attr: 467,
  file_getattr: 468, file_setattr: 469, listns: 470,
};
const NEWER_BY_NR = new Map(Object.entries(NEWER).map(([name, nr]) => [nr, name]));

export function hostArch(): Arch {
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  throw hostLacks.arch('seccomp filters', 'x86_64 and aarch64');
}

const tokens = new Map<Arch, number>();
function token(arch: Arch): number {
  let t = tokens.get(arch);
  if (t === undefined) tokens.set(arch, (t = libseccomp().archToken(arch)));
  return t;
}

/**
 * The number of `name` on `arch`; "absent" when it is a real system call that this
 * architecture does not have; "unknown" when no table knows the name (a typo, or a call newer
 * than pawl).
 */
export function resolveSyscall(name: string, arch: Arch): number | 'absent' | 'unknown' {
  const nr = libseccomp().resolveName(token(arch), name);
  if (nr >= 0) return nr;
  if (nr !== SCMP.NR_ERROR) return 'absent';
  return NEWER[name] ?? 'unknown';
}

/** The name of system call `nr` on `arch` (the host's by default), or null when unknown. */
export function syscallName(nr: number, arch: Arch = hostArch()): string | null {
  if (!Number.isInteger(nr) || nr < 0) return null;
  return libseccomp().resolveNum(token(arch), nr) ?? NEWER_BY_NR.get(nr) ?? null;
}
