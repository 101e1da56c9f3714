// The cached host facts and what each is keyed on.
//   cgroup layout   <- boot id, /proc/self/mountinfo (cgroup/layout-cache.ts)
//   ldd of a binary <- the binary, /etc/ld.so.cache, ldd itself, LD_LIBRARY_PATH
//   seccomp filter  <- the unresolved profile, the compiler version, libseccomp's file, the arch
// (The rootfs keeps its own: an index from its sources' stat signature to its content hash, and
// the stat signature of every file of the built tree: rootfs/index.ts.)
import { sha256, statSig } from './keys.js';


export function lddKey(program: string): string {
  return sha256(statSig(program), statSig('/etc/ld.so.cache'), statSig('/usr/bin/ldd'), process.env.LD_LIBRARY_PATH ?? '');
}

const LIBSECCOMP = ['/usr/lib/x86_64-linux-gnu/libseccomp.so.2', '/usr/lib/aarch64-linux-gnu/libseccomp.so.2', '/usr/lib64/libseccomp.so.2', '/usr/lib/libseccomp.so.2'];

/** Bumped whenever the cached plan's shape changes, so an old entry is never read as a new one. */
const SECCOMP_PLAN_FORMAT = 'plan-v3';

export function seccompKey(compiler: string, profileJson: string): string {
  return sha256(SECCOMP_PLAN_FORMAT, compiler, process.arch, statSig('/etc/ld.so.cache'), ...LIBSECCOMP.map(statSig), profileJson);
}
