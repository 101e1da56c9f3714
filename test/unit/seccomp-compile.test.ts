// The compiled filters, checked without a kernel: a small classic-BPF interpreter runs the bytes
// libseccomp produced against many (syscall, arguments) pairs and compares with what the
// resolved profile says. The real-kernel checks are in test/security/seccomp.test.ts.
import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';
import { compileBpf } from '../../src/seccomp/compile.js';
import { seccompPlan } from '../../src/seccomp/index.js';
import { actionCode, SCMP } from '../../src/seccomp/libseccomp.js';
import { shippedProfile } from '../../src/seccomp/profiles.js';
import { hostTarget, resolveProfile, type ResolvedProfile } from '../../src/seccomp/resolve.js';
import type { Arg } from '../../src/config/seccomp.js';
import { resolveSyscall } from '../../src/seccomp/syscalls.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const PROFILES = join(import.meta.dirname, '..', '..', 'native-profiles');

const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_SYSCALL_BIT = 0x40000000;
const LEVELS = ['untrusted', 'limited', 'trusted', 'system'] as const;

/** struct seccomp_data: nr, arch, instruction_pointer, args[6] (little-endian). */
function seccompData(nr: number, args: bigint[], arch = AUDIT_ARCH_X86_64): Buffer {
  const d = Buffer.alloc(64);
  d.writeUInt32LE(nr >>> 0, 0);
  d.writeUInt32LE(arch >>> 0, 4);
  args.forEach((a, i) => d.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  return d;
}

/** Classic BPF as the kernel runs a seccomp filter (the instructions libseccomp emits). */
function runBpf(prog: Buffer, data: Buffer): number {
  let A = 0;
  let X = 0;
  const mem = new Array<number>(16).fill(0);
  for (let pc = 0; pc * 8 < prog.length; pc++) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog[pc * 8 + 2]!;
    const jf = prog[pc * 8 + 3]!;
    const k = prog.readUInt32LE(pc * 8 + 4);
    switch (code) {
      case 0x20: A = data.readUInt32LE(k); break; // ld [k]
      case 0x00: A = k; break; // ld #k
      case 0x60: A = mem[k]!; break; // ld M[k]
      case 0x61: X = mem[k]!; break; // ldx M[k]
      case 0x02: mem[k] = A; break; // st M[k]
      case 0x03: mem[k] = X; break; // stx M[k]
      case 0x07: X = A; break; // tax
      case 0x87: A = X; break; // txa
      case 0x54: A = (A & k) >>> 0; break; // and #k
      case 0x05: pc += k; break; // ja
      case 0x15: pc += A === k ? jt : jf; break; // jeq #k
      case 0x25: pc += A > k ? jt : jf; break; // jgt #k
      case 0x35: pc += A >= k ? jt : jf; break; // jge #k
      case 0x45: pc += (A & k) !== 0 ? jt : jf; break; // jset #k
      case 0x06: return k; // ret #k
      default: throw new Error(`BPF opcode 0x${code.toString(16)} not modelled at ${pc}`);
    }
  }
  throw new Error('fell off the end of the program');
}

const U64 = (1n << 64n) - 1n;
function holds(a: Arg, args: bigint[]): boolean {
  const v = args[a.index]!;
  const x = BigInt(a.value);
  switch (a.op) {
    case 'SCMP_CMP_EQ': return v === x;
    case 'SCMP_CMP_NE': return v !== x;
    case 'SCMP_CMP_LT': return v < x;
    case 'SCMP_CMP_LE': return v <= x;
    case 'SCMP_CMP_GT': return v > x;
    case 'SCMP_CMP_GE': return v >= x;
    case 'SCMP_CMP_MASKED_EQ': return (v & x & U64) === BigInt(a.valueTwo);
  }
}

/**
 * What the profile means for one call, for profiles whose conditional rules with different
 * actions never overlap (overlaps with one action, e.g. two namespace flags of clone, are fine).
 */
function expected(p: ResolvedProfile, name: string, args: bigint[]): number {
  const rules = p.rules.filter((r) => r.names.includes(name));
  const plain = rules.find((r) => r.args.length === 0);
  const hits = plain ? [plain] : rules.filter((r) => r.args.every((a) => holds(a, args)));
  const actions = new Set(hits.map((r) => actionCode(r.action, r.errnoRet)));
  expect(actions.size, `${name}(${args.map((a) => `0x${a.toString(16)}`)}) matches rules with ${actions.size} different actions`).toBeLessThanOrEqual(1);
  return actions.size ? [...actions][0]! : actionCode(p.defaultAction, p.defaultErrnoRet);
}

// Deterministic pseudo-random 64-bit values (xorshift), plus the edges that matter.
function* values(seed: number, n: number, edges: number[]): Generator<bigint> {
  let s = BigInt(seed) || 1n;
  for (const e of edges) {
    const v = BigInt(e >>> 0);
    yield* [v, v | (1n << 32n), v | (0xffffffffn << 32n)];
  }
  for (let i = 0; i < n; i++) {
    s ^= (s << 13n) & U64; s ^= s >> 7n; s ^= (s << 17n) & U64;
    yield i % 3 === 0 ? s & 0xffffffffn : i % 3 === 1 ? s & 0xffffn : s;
  }
}

const resolved = (level: (typeof LEVELS)[number]) => resolveProfile(shippedProfile(level), hostTarget()).profile;

describe('shipped profiles compiled to BPF', () => {
  const args = (nr: number, index: number, v: bigint) => seccompData(nr, Array.from({ length: 6 }, (_, i) => (i === index ? v : 0n)));

  it.each(LEVELS)('%s: every argument-dependent call decides as the profile says (random and edge values)', (level) => {
    const p = resolved(level);
    const bpf = compileBpf(p);
    const cases: [string, number, number[]][] = [
      ['ioctl', 1, [0x5412, 0x541c, 0x5401, 0x5413, 0x541d, 0x5410, 0x541e, 0]],
      ['socket', 0, [1, 2, 10, 16, 17, 38, 40, 0, 3, 39, 41]],
      ['personality', 0, [0, 8, 0x20000, 0x20008, 0xffffffff, 0x40000, 0x400000, 0x80040000, 0x7fffffff]],
      ['clone', 0, [0x11, 0x3d0f00, 0x10000011, 0x20000, 0x7e020000, 0x80000000, 0x20000000]],
    ];
    let checked = 0;
    for (const [name, index, edges] of cases) {
      const nr = resolveSyscall(name, 'x86_64') as number;
      for (const v of values(nr, 3000, edges)) {
        const vals = Array.from({ length: 6 }, (_, i) => (i === index ? v : 0n));
        expect(runBpf(bpf, args(nr, index, v)) >>> 0, `${name} arg${index}=0x${v.toString(16)}`).toBe(expected(p, name, vals) >>> 0);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(12_000);
  });

  it('denies the TIOCSTI high-bit bypass (CVE-2019-10063) and AF_NETLINK with high bits', () => {
    const bpf = compileBpf(resolved('limited'));
    const eperm = actionCode('SCMP_ACT_ERRNO', 1);
    expect(runBpf(bpf, args(16, 1, 0x1_0000_5412n))).toBe(eperm);
    expect(runBpf(bpf, args(16, 1, 0xffff_ffff_0000_5412n))).toBe(eperm);
    expect(runBpf(bpf, args(41, 0, 0x1_0000_0010n))).toBe(eperm);
    expect(runBpf(bpf, args(16, 1, 0x5401n))).toBe(SCMP.ACT_ALLOW);
  });

  it('kills calls through the x32 and x86 ABIs, and knows unlisted calls get ENOSYS', () => {
    for (const level of LEVELS) {
      const bpf = compileBpf(resolved(level));
      expect(runBpf(bpf, seccompData(X32_SYSCALL_BIT | 39, [])) >>> 0).toBe(SCMP.ACT_KILL_PROCESS);
      expect(runBpf(bpf, seccompData(20, [], 0x40000003)) >>> 0).toBe(SCMP.ACT_KILL_PROCESS);
      expect(runBpf(bpf, seccompData(39, []))).toBe(SCMP.ACT_ALLOW);
      expect(runBpf(bpf, seccompData(435 /* clone3 */, []))).toBe(actionCode('SCMP_ACT_ERRNO', 38));
      expect(runBpf(bpf, seccompData(999, []))).toBe(actionCode('SCMP_ACT_ERRNO', 38));
    }
  });

  it('untrusted kills where the others answer EPERM', () => {
    for (const name of ['mount', 'ptrace', 'unshare', 'keyctl', 'bpf', 'io_uring_setup']) {
      const d = seccompData(resolveSyscall(name, 'x86_64') as number, []);
      expect(runBpf(compileBpf(resolved('untrusted')), d) >>> 0).toBe(SCMP.ACT_KILL_PROCESS);
      for (const level of ['limited', 'trusted', 'system'] as const) expect(runBpf(compileBpf(resolved(level)), d)).toBe(actionCode('SCMP_ACT_ERRNO', 1));
    }
  });
});

describe('determinism and caching', () => {
  it('the same profile compiles to the same bytes', () => {
    const a = compileBpf(resolved('limited'));
    const b = compileBpf(resolveProfile(structuredClone(shippedProfile('limited')), hostTarget()).profile);
    expect(a.equals(b)).toBe(true);
    expect(a.length % 8).toBe(0);
  });

  it('plans are cached by hash; different levels differ', async () => {
    const p1 = (await seccompPlan(resolvePolicy({ trustLevel: 'limited' })))!;
    const p2 = (await seccompPlan(resolvePolicy({ trustLevel: 'limited', overrides: { resources: { memory: '256MB' } } })))!;
    const u = (await seccompPlan(resolvePolicy({ trustLevel: 'untrusted' })))!;
    expect(p2.hash).toBe(p1.hash);
    expect(p2.bpf).toBe(p1.bpf);
    expect(p1.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(u.hash).not.toBe(p1.hash);
    expect([p1.name, u.name]).toEqual(['pawl-limited', 'pawl-untrusted']);
    expect([p1.killsOnViolation, u.killsOnViolation]).toEqual([false, true]);
  });

  it('key order in an inline profile does not change the hash', async () => {
    const rule = { names: ['ioctl'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 0xffffffff, valueTwo: 0x5412, op: 'SCMP_CMP_MASKED_EQ' }] };
    const shuffled = { args: [{ op: 'SCMP_CMP_MASKED_EQ', valueTwo: 0x5412, value: 0xffffffff, index: 1 }], action: 'SCMP_ACT_ERRNO', names: ['ioctl'] };
    const plan = (r: object) => seccompPlan(resolvePolicy({ trustLevel: 'trusted', overrides: { security: { seccomp: { profile: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [r] } as never } } } }));
    expect((await plan(shuffled))!.hash).toBe((await plan(rule))!.hash);
  });

  // "none" is refused at untrusted and limited; a profile that lets every unnamed call through
  // (a deny list, or an empty one) was accepted there.
  it('refuses a profile that allows what it does not name where a filter is required', async () => {
    const allowAll = (trustLevel: string) => seccompPlan(resolvePolicy({ trustLevel, overrides: { security: { seccomp: { profile: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [] } as never } } } }));
    for (const level of ['untrusted', 'limited']) await expect(allowAll(level)).rejects.toThrow(/inline: its defaultAction lets every call it does not name through, which is refused at trust level "(untrusted|limited)"/);
    expect((await allowAll('trusted'))!.allowsByDefault).toBe(true);
  });

  it('says which calls a filter lets through whatever their arguments (the Landlock launcher needs three)', async () => {
    const limited = (await seccompPlan(resolvePolicy({ trustLevel: 'limited' })))!;
    expect(['landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self', 'openat2'].map((n) => limited.allows(n))).toEqual([true, true, true, true]);
    expect([limited.allows('mount'), limited.allows('kexec_load'), limited.allowsByDefault]).toEqual([false, false, false]);
    const doc = JSON.parse(readFileSync(join(PROFILES, 'pawl-limited.json'), 'utf8')) as { syscalls: { names: string[] }[] };
    for (const r of doc.syscalls) r.names = r.names.filter((n) => !n.startsWith('landlock_'));
    const without = (await seccompPlan(resolvePolicy({ trustLevel: 'limited', overrides: { security: { seccomp: { profile: doc as never } } } })))!;
    expect(without.allows('landlock_add_rule')).toBe(false);
    expect(without.allows('openat')).toBe(true);
  });
});
