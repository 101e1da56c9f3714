// A resolved profile -> the OCI runtime spec's `linux.seccomp` object for runc/crun. It holds
// exactly the rules the BPF for bwrap was built from: Docker-only fields (includes, excludes,
// archMap, errno names) are already decided, and only the native architecture is listed, so the
// runtimes, like bwrap, send other ABIs to the bad-architecture action.
import type { Arg } from '../config/seccomp.js';
import type { ResolvedProfile } from './resolve.js';
import { ARCH_NAMES } from './syscalls.js';

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  flags?: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: Arg[] }[];
}

export function ociSeccomp(p: ResolvedProfile): OciSeccomp {
  return {
    defaultAction: p.defaultAction,
    ...(p.defaultErrnoRet === undefined ? {} : { defaultErrnoRet: p.defaultErrnoRet }),
    architectures: [ARCH_NAMES[p.arch].oci],
    ...(p.flags ? { flags: p.flags } : {}),
    syscalls: p.rules.map((r) => ({
      names: r.names,
      action: r.action,
      ...(r.errnoRet === undefined ? {} : { errnoRet: r.errnoRet }),
      ...(r.args.length ? { args: r.args } : {}),
    })),
  };
}
