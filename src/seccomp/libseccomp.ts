// The few libseccomp calls pawl needs, through koffi (ffi-napi does not install on Node 20: see
// HOST-FACTS.md). Loaded on first use, so importing the seccomp layer never needs the library;
// a host without libseccomp.so.2 gets a HostUnsupported error when a filter is actually built.
import koffi, { type LibraryHandle } from 'koffi';
import { loadLibc } from '../util/libc.js';
import { hostLacks } from '../hostfacts/capabilities.js';

export interface ArgCmp {
  arg: number;
  op: number;
  datum_a: bigint;
  datum_b: bigint;
}

export interface Libseccomp {
  version: string;
  init(defaultAction: number): unknown;
  release(ctx: unknown): void;
  ruleAdd(ctx: unknown, action: number, syscall: number, args: ArgCmp[]): number;
  attrSet(ctx: unknown, attr: number, value: number): number;
  exportBpf(ctx: unknown, fd: number): number;
  archToken(name: string): number;
  resolveName(arch: number, name: string): number;
  resolveNum(arch: number, nr: number): string | null;
  memfd(name: string): number;
}

// From <seccomp.h> (libseccomp 2.5).
export const SCMP = {
  ACT_KILL_PROCESS: 0x80000000,
  ACT_KILL_THREAD: 0x00000000,
  ACT_TRAP: 0x00030000,
  ACT_ERRNO: 0x00050000,
  ACT_TRACE: 0x7ff00000,
  ACT_LOG: 0x7ffc0000,
  ACT_ALLOW: 0x7fff0000,
  FLTATR_ACT_BADARCH: 2,
  FLTATR_CTL_OPTIMIZE: 8,
  /** seccomp_syscall_resolve_name*: the name is in no table libseccomp knows. */
  NR_ERROR: -1,
} as const;

/** The filter return value for an OCI action (errnoRet: the errno, or the trace message). */
export function actionCode(action: string, errnoRet = 0): number {
  switch (action) {
    case 'SCMP_ACT_ALLOW': return SCMP.ACT_ALLOW;
    case 'SCMP_ACT_ERRNO': return (SCMP.ACT_ERRNO | (errnoRet & 0xffff)) >>> 0;
    case 'SCMP_ACT_TRACE': return (SCMP.ACT_TRACE | (errnoRet & 0xffff)) >>> 0;
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD': return SCMP.ACT_KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS': return SCMP.ACT_KILL_PROCESS;
    case 'SCMP_ACT_TRAP': return SCMP.ACT_TRAP;
    case 'SCMP_ACT_LOG': return SCMP.ACT_LOG;
    default: throw new Error(`no filter action for ${action}`);
  }
}

const MFD_CLOEXEC = 1;

let loaded: Libseccomp | null = null;

export function libseccomp(): Libseccomp {
  if (loaded) return loaded;
  let lib: LibraryHandle;
  try {
    lib = koffi.load('libseccomp.so.2');
  } catch (e) {
    throw hostLacks.library('libseccomp.so.2', 'libseccomp2', (e as Error).message);
  }
  koffi.struct('scmp_arg_cmp', { arg: 'uint', op: 'int', datum_a: 'uint64', datum_b: 'uint64' });
  const Version = koffi.struct('scmp_version', { major: 'uint', minor: 'uint', micro: 'uint' });
  const version = lib.func('const void *seccomp_version()');
  const v = koffi.decode(version(), Version) as { major: number; minor: number; micro: number };
  const add = lib.func('int seccomp_rule_add_array(void *, uint32_t, int, uint, const scmp_arg_cmp *)');
  // The name comes back malloc'd: "!" makes koffi free it after converting it to a string.
  const resolveNum = lib.func('char *! seccomp_syscall_resolve_num_arch(uint32_t, int)');
  loaded = {
    version: `${v.major}.${v.minor}.${v.micro}`,
    init: lib.func('void *seccomp_init(uint32_t)'),
    release: lib.func('void seccomp_release(void *)'),
    ruleAdd: (ctx, action, syscall, args) => add(ctx, action, syscall, args.length, args.length ? args : null) as number,
    attrSet: lib.func('int seccomp_attr_set(void *, int, uint32_t)'),
    exportBpf: lib.func('int seccomp_export_bpf(void *, int)'),
    archToken: lib.func('uint32_t seccomp_arch_resolve_name(const char *)'),
    resolveName: lib.func('int seccomp_syscall_resolve_name_arch(uint32_t, const char *)'),
    resolveNum: (arch, nr) => resolveNum(arch, nr) as string | null,
    memfd: (name) => loadLibc().memfd_create(name, MFD_CLOEXEC),
  };
  return loaded;
}
