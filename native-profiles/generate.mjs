#!/usr/bin/env node
// Writes pawl's shipped seccomp profiles, native-profiles/pawl-<level>.json, one per trust level.
//
//   node native-profiles/generate.mjs        (test/unit/seccomp-profiles.test.ts checks they are current)
//
// They start from the container allowlist: podman's default profile
// (/usr/share/containers/seccomp.json, package golang-github-containers-common, Apache-2.0),
// default ERRNO(ENOSYS), with its capability conditions decided for pawl's sandboxes, which
// hold no capabilities. pawl then denies more (DENY below) and narrows clone, clone3, ioctl,
// personality and socket by argument. Denied calls answer EPERM; at the untrusted level every
// EPERM becomes a kill of the whole process (SIGSYS, reported as a SecurityViolation).
//
// libseccomp (and so bwrap, runc and crun alike) lets an unconditional rule for a call beat any
// conditional rule for it, so every call with conditions here gets rules that partition its
// argument space: exactly one rule matches any value.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BASE = '/usr/share/containers/seccomp.json';
export const LEVELS = ['untrusted', 'limited', 'trusted', 'system'];

const DENY = [
  { names: ['mount', 'umount', 'umount2', 'pivot_root', 'chroot', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr'],
    comment: 'mounts, old and new API: the filesystem view is fixed by pawl before the program starts' },
  { names: ['unshare', 'setns'], comment: 'new or foreign namespaces (a new user namespace hands out capabilities)' },
  { names: ['ptrace', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd'],
    comment: 'reading or driving another process (ptrace also bypasses seccomp on kernels before 4.8)' },
  { names: ['bpf', 'perf_event_open', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register'],
    comment: 'large kernel attack surface, a frequent exploit primitive' },
  { names: ['keyctl', 'add_key', 'request_key'], comment: 'kernel keyrings are not namespaced' },
  { names: ['kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module'], comment: 'loading kernel code' },
  { names: ['open_by_handle_at'], comment: 'opens any file of a mounted filesystem by handle, escaping bind mounts ("shocker")' },
  { names: ['syslog'], comment: "the host's kernel log, which holds other runs' audit records" },
  { names: ['io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents'],
    comment: "Linux AIO: its contexts count against the whole host's aio-max-nr, which one run could use up (node does not use it)" },
];

// <linux/sched.h>: every CLONE_NEW* flag clone() accepts (CLONE_NEWTIME fits clone3 only).
const CLONE_NEW = { CLONE_NEWNS: 0x00020000, CLONE_NEWCGROUP: 0x02000000, CLONE_NEWUTS: 0x04000000, CLONE_NEWIPC: 0x08000000,
  CLONE_NEWUSER: 0x10000000, CLONE_NEWPID: 0x20000000, CLONE_NEWNET: 0x40000000 };
const CLONE_NEW_ANY = Object.values(CLONE_NEW).reduce((a, b) => a | b, 0) >>> 0;

// <linux/personality.h>: the personas Docker allows (PER_LINUX, PER_LINUX32, UNAME26 and both,
// and the 0xffffffff query), and the flags that weaken the address space.
const PERSONA_SAFE = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];
const PERSONA_UNSAFE = { ADDR_NO_RANDOMIZE: 0x0040000, FDPIC_FUNCPTRS: 0x0080000, MMAP_PAGE_ZERO: 0x0100000,
  ADDR_COMPAT_LAYOUT: 0x0200000, READ_IMPLIES_EXEC: 0x0400000, ADDR_LIMIT_32BIT: 0x0800000, ADDR_LIMIT_3GB: 0x8000000 };

// <linux/socket.h>
const AF_ALLOWED = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10 };
const AF_DENIED = { AF_NETLINK: 16, AF_PACKET: 17, AF_ALG: 38, AF_VSOCK: 40 };

// <asm-generic/ioctls.h> (the same on x86_64 and aarch64)
const IOCTL_DENIED = { TIOCSTI: 0x5412, TIOCLINUX: 0x541c };

const SPECIAL = ['clone', 'clone3', 'ioctl', 'personality', 'socket', 'socketpair'];
const LOW32 = 0xffffffff;

const masked = (index, mask, value) => ({ index, value: mask >>> 0, valueTwo: value >>> 0, op: 'SCMP_CMP_MASKED_EQ' });

/**
 * Masks and values that together match every 32-bit number except `values`, each exactly once:
 * the branches of the binary trie of `values` (high bit first) that leave the set.
 */
export function low32Complement(values) {
  const out = [];
  const walk = (prefix, bit, set) => {
    if (bit < 0) return;
    const mask = (LOW32 << bit) >>> 0;
    for (const b of [0, 1]) {
      const branch = (prefix | (b << bit)) >>> 0;
      const sub = set.filter((v) => ((v >>> bit) & 1) === b);
      if (sub.length === 0) out.push({ mask, value: branch });
      else walk(branch, bit - 1, sub);
    }
  };
  walk(0, 31, values.map((v) => v >>> 0));
  return out;
}

function pawlRules(deny) {
  const rules = DENY.map((d) => ({ names: d.names, ...deny, comment: `pawl: ${d.comment}` }));
  rules.push({ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [masked(0, CLONE_NEW_ANY, 0)],
    comment: 'pawl: clone without namespace flags (fork, threads)' });
  for (const [flag, bit] of Object.entries(CLONE_NEW)) {
    rules.push({ names: ['clone'], ...deny, args: [masked(0, bit, bit)], comment: `pawl: clone with ${flag}` });
  }
  rules.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38,
    comment: 'pawl: its flags sit in memory a filter cannot read; ENOSYS makes glibc fall back to clone, whose flags are checked' });
  for (const v of PERSONA_SAFE) {
    rules.push({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: v, valueTwo: 0, op: 'SCMP_CMP_EQ' }],
      comment: 'pawl: the personas Docker allows' });
  }
  for (const [flag, bit] of Object.entries(PERSONA_UNSAFE)) {
    // Bit 31 must be clear so that the 0xffffffff query stays with its own rule.
    rules.push({ names: ['personality'], ...deny, args: [masked(0, bit | 0x80000000, bit)], comment: `pawl: personality with ${flag}` });
  }
  for (const [family, af] of Object.entries(AF_ALLOWED)) {
    rules.push({ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [masked(0, LOW32, af)], comment: `pawl: ${family} sockets (other families: ENOSYS)` });
  }
  for (const [family, af] of Object.entries(AF_DENIED)) {
    // The kernel reads the family as an int: compare the low 32 bits, so high bits cannot hide it.
    rules.push({ names: ['socket'], ...deny, args: [masked(0, LOW32, af)], comment: `pawl: ${family} sockets` });
  }
  // socketpair runs the family's socket creation too before any refusal: AF_UNIX only (the one
  // family it serves); the rest is ENOSYS.
  rules.push({ names: ['socketpair'], action: 'SCMP_ACT_ALLOW', args: [masked(0, LOW32, AF_ALLOWED.AF_UNIX)], comment: 'pawl: AF_UNIX socket pairs (other families: ENOSYS)' });
  for (const [cmd, nr] of Object.entries(IOCTL_DENIED)) {
    // Low 32 bits only: the kernel ignores the high ones (TIOCSTI bypass, CVE-2019-10063).
    rules.push({ names: ['ioctl'], ...deny, args: [masked(1, LOW32, nr)], comment: `pawl: ioctl ${cmd} (low 32 bits of the request)` });
  }
  for (const { mask, value } of low32Complement(Object.values(IOCTL_DENIED))) {
    rules.push({ names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [masked(1, mask, value)],
      comment: 'pawl: ioctl with any other request (these rules partition the rest of the 32-bit space)' });
  }
  return rules;
}

/** The profile for one trust level, from podman's profile as parsed JSON. */
export function buildProfile(level, base) {
  const deny = level === 'untrusted' ? { action: 'SCMP_ACT_KILL_PROCESS' } : { action: 'SCMP_ACT_ERRNO', errnoRet: 1 };
  const capsFree = (r) => !r.includes?.caps?.length;
  const taken = new Set([...SPECIAL, ...DENY.flatMap((d) => d.names)]);
  const baseDenied = base.syscalls.filter((r) => r.action !== 'SCMP_ACT_ALLOW' && capsFree(r) && !r.args?.length);
  for (const r of baseDenied) r.names.forEach((n) => taken.add(n));
  const baseAllowed = base.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && capsFree(r) && !r.args?.length);
  const keep = (names) => names.filter((n) => !taken.has(n));

  const rules = [];
  for (const r of baseAllowed) {
    const names = keep(r.names);
    if (!names.length) continue;
    const arches = r.includes?.arches;
    rules.push({ names, action: 'SCMP_ACT_ALLOW', ...(arches?.length ? { includes: { arches } } : {}),
      comment: arches?.length ? `container allowlist (${arches.join(', ')})` : 'container allowlist' });
  }
  const denied = baseDenied.flatMap((r) => r.names).filter((n) => !DENY.some((d) => d.names.includes(n)));
  rules.push({ names: [...new Set(denied)].sort(), ...deny,
    comment: 'container profile: obsolete, or needing a capability pawl never grants' });
  rules.push(...pawlRules(deny));
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 38,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'],
    syscalls: rules,
  };
}

export const profileText = (level, base) => `${JSON.stringify(buildProfile(level, base), null, 2)}\n`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const base = JSON.parse(readFileSync(BASE, 'utf8'));
  for (const level of LEVELS) {
    const out = new URL(`pawl-${level}.json`, import.meta.url);
    writeFileSync(out, profileText(level, base));
    console.log(`wrote ${fileURLToPath(out)}`);
  }
}
