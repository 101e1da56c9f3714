// A resolved profile -> classic BPF for `bwrap --seccomp FD`, through libseccomp: the same
// library runc and crun hand the OCI JSON to, fed the same rules in the same order, so a
// syscall with several rules is decided the same way everywhere (an unconditional rule wins
// over conditional ones for the same call, whatever the order).
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, readSync } from 'node:fs';
import { PawlError } from '../errors.js';
import { actionCode, libseccomp, SCMP, type ArgCmp, type Libseccomp } from './libseccomp.js';
import { errnoName, type ResolvedProfile } from './resolve.js';
import type { Op } from '../config/seccomp.js';
import { hostArch, resolveSyscall } from './syscalls.js';

const OP_CODES: Record<Op, number> = {
  SCMP_CMP_NE: 1, SCMP_CMP_LT: 2, SCMP_CMP_LE: 3, SCMP_CMP_EQ: 4, SCMP_CMP_GE: 5, SCMP_CMP_GT: 6, SCMP_CMP_MASKED_EQ: 7,
};

/**
 * libseccomp's SCMP_FLTATR_CTL_OPTIMIZE. 2, a binary tree on the syscall number (libseccomp >=
 * 2.5), makes the same decisions as 1, a linear list, in fewer instructions per call with a
 * ~350-name allowlist: pawl uses 2 (bench/seccomp.mjs measures both).
 */
export type Optimize = 1 | 2;

const BPF_MAXINSNS = 4096;

// Bump when this file changes what it emits for the same resolved profile.
export const COMPILER = 'pawl-seccomp/1';

/** Identifies the BPF a resolved profile compiles to: the cache key of plans. */
export function filterHash(p: ResolvedProfile): string {
  return createHash('sha256').update(JSON.stringify({ compiler: COMPILER, libseccomp: libseccomp().version, profile: p })).digest('hex');
}

function check(rc: number, what: string): void {
  if (rc < 0) throw new PawlError('RuntimeError', `libseccomp could not ${what}: ${errnoName(-rc)}`);
}

/**
 * The filter as the kernel's struct sock_filter array. Built for the host architecture only:
 * libseccomp reads rule numbers in the host's numbering. Other ABIs of the host (x86 and x32 on
 * x86_64, arm on aarch64) meet the bad-architecture action: the process is killed.
 */
export function compileBpf(p: ResolvedProfile, optimize: Optimize = 2): Buffer {
  if (p.arch !== hostArch()) throw new PawlError('HostUnsupported', `a ${p.arch} filter can only be compiled on a ${p.arch} host`);
  const lib = libseccomp();
  const ctx = lib.init(actionCode(p.defaultAction, p.defaultErrnoRet));
  if (!ctx) throw new PawlError('RuntimeError', 'libseccomp could not create a filter (seccomp_init)');
  try {
    check(lib.attrSet(ctx, SCMP.FLTATR_ACT_BADARCH, SCMP.ACT_KILL_PROCESS), 'set the bad-architecture action');
    check(lib.attrSet(ctx, SCMP.FLTATR_CTL_OPTIMIZE, optimize), 'set the optimization level');
    for (const r of p.rules) {
      const action = actionCode(r.action, r.errnoRet);
      const args: ArgCmp[] = r.args.map((a) => ({ arg: a.index, op: OP_CODES[a.op], datum_a: BigInt(a.value), datum_b: BigInt(a.valueTwo) }));
      for (const name of r.names) {
        const rc = lib.ruleAdd(ctx, action, resolveSyscall(name, p.arch) as number, args);
        if (rc < 0) throw new PawlError('InvalidPolicy', `seccomp profile: libseccomp refused the ${r.action} rule for ${name}: ${errnoName(-rc)}`);
      }
    }
    const bpf = exportBpf(lib, ctx);
    if (bpf.length / 8 > BPF_MAXINSNS) {
      throw new PawlError('InvalidPolicy', `seccomp profile: the filter has ${bpf.length / 8} BPF instructions; the kernel loads at most ${BPF_MAXINSNS}`);
    }
    return bpf;
  } finally {
    lib.release(ctx);
  }
}

// libseccomp 2.5 exports to an fd only (seccomp_export_bpf_mem is 2.6): use an anonymous memfd.
function exportBpf(lib: Libseccomp, ctx: unknown): Buffer {
  const fd = lib.memfd('pawl-seccomp');
  if (fd < 0) throw new PawlError('RuntimeError', 'memfd_create failed');
  try {
    check(lib.exportBpf(ctx, fd), 'export the BPF program');
    const bpf = Buffer.alloc(fstatSync(fd).size);
    readSync(fd, bpf, 0, bpf.length, 0);
    return bpf;
  } finally {
    closeSync(fd);
  }
}
