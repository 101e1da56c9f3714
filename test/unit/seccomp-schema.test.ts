import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Policy } from '../../src/config/policy.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import { PawlError } from '../../src/errors.js';
import { explainSeccomp, seccompPlan, SeccompPolicy, SeccompProfile } from '../../src/seccomp/index.js';
import { hostTarget, resolveProfile } from '../../src/seccomp/resolve.js';

const PODMAN = '/usr/share/containers/seccomp.json';

// Raw input, valid or not on purpose: typed `never` so it fits wherever a profile is expected.
const profile = (syscalls: unknown[], extra: object = {}) => ({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38, syscalls, ...extra }) as never;
const issues = (v: unknown) => {
  const r = SeccompProfile.safeParse(v);
  expect(r.success).toBe(false);
  return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
};
const refusal = async (input: Parameters<typeof resolvePolicy>[0]) => {
  try {
    await seccompPlan(resolvePolicy(input));
  } catch (e) {
    expect(e).toBeInstanceOf(PawlError);
    expect((e as PawlError).kind).toBe('InvalidPolicy');
    return (e as PawlError).message;
  }
  throw new Error('the policy was accepted');
};

describe('SeccompPolicy', () => {
  it('defaults to the shipped profile of the trust level', () => {
    expect(SeccompPolicy.prefault({}).parse(undefined)).toEqual({ profile: 'trust-level' });
    expect(Policy.parse({}).security.seccomp.profile).toBe('trust-level');
  });

  it('accepts "none", an absolute path and an inline profile', () => {
    expect(SeccompPolicy.parse({ profile: 'none' }).profile).toBe('none');
    expect(SeccompPolicy.parse({ profile: '/etc/p.json' }).profile).toBe('/etc/p.json');
    expect(SeccompPolicy.parse({ profile: profile([{ names: ['read'], action: 'SCMP_ACT_ALLOW' }]) }).profile).toMatchObject({ defaultAction: 'SCMP_ACT_ERRNO' });
  });

  it('refuses a relative path, naming the accepted forms', () => {
    expect(() => resolvePolicy({ overrides: { security: { seccomp: { profile: 'seccomp.json' } } } })).toThrow(/security\.seccomp\.profile: must be "trust-level", "none", an absolute path/);
  });

  it('names the failing field of an inline profile (not just "Invalid input")', () => {
    const bad = { security: { seccomp: { profile: profile([{ names: ['read'], action: 'SCMP_ACT_MAYBE' }]) } } };
    expect(() => resolvePolicy({ overrides: bad as never })).toThrow(/syscalls\.0\.action: Invalid option/);
  });
});

describe("podman's default profile, as it is", () => {
  it('is installed (scripts/setup: golang-github-containers-common)', () => {
    expect(existsSync(PODMAN), `${PODMAN} is missing`).toBe(true);
  });

  const doc = () => JSON.parse(readFileSync(PODMAN, 'utf8'));

  it('parses unchanged (archMap, includes/excludes, errno names, args: null)', () => {
    const p = SeccompProfile.parse(doc());
    expect(p.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(p.defaultErrnoRet).toBe(38);
    expect(p.syscalls!.length).toBe(doc().syscalls.length);
  });

  it('resolves for this host with every name known, compat-only names set aside', () => {
    const res = resolveProfile(SeccompProfile.parse(doc()), hostTarget());
    expect(res.absent).toContain('_llseek');
    expect(res.skipped).toEqual([]);
    // Capability rules decided for a sandbox with no capabilities: chroot is refused...
    expect(res.profile.rules.find((r) => r.names.includes('chroot'))).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 1 });
    // ...and the CAP_SYS_ADMIN-only allowance of bpf is dropped.
    expect(res.profile.rules.filter((r) => r.names.includes('bpf')).map((r) => r.action)).toEqual(['SCMP_ACT_ERRNO']);
  });

  it("shows that its EPERM rule for setns never applies (the allowlist's unconditional rule decides first)", () => {
    const res = resolveProfile(SeccompProfile.parse(doc()), hostTarget());
    expect(res.overridden).toEqual(['setns']);
    expect(res.profile.rules.filter((r) => r.names.includes('setns')).map((r) => r.action)).toEqual(['SCMP_ACT_ALLOW']);
  });

  it('is usable as a policy, by path and inline, with the same filter', async () => {
    const byPath = await seccompPlan(resolvePolicy({ overrides: { security: { seccomp: { profile: PODMAN } } } }));
    const inline = await seccompPlan(resolvePolicy({ overrides: { security: { seccomp: { profile: doc() } } } }));
    expect(byPath!.name).toBe(PODMAN);
    expect(inline!.name).toBe('inline');
    expect(inline!.hash).toBe(byPath!.hash);
    expect(inline!.bpf.equals(byPath!.bpf)).toBe(true);
  });
});

describe('refusals', () => {
  it('unknown system call names, all of them named', async () => {
    const msg = await refusal({ overrides: { security: { seccomp: { profile: profile([{ names: ['read', 'frobnicate', 'opne'], action: 'SCMP_ACT_ALLOW' }]) } } } });
    expect(msg).toMatch(/unknown system call names: frobnicate, opne/);
    expect(msg).toMatch(/"optional": true/);
  });

  it('also in rules that do not apply here or repeat the default action', async () => {
    const msg = await refusal({ overrides: { security: { seccomp: { profile: profile([
      { names: ['s390_runtime_instr', 's390_frob'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['s390x'] } },
      { names: ['raed'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
    ]) } } } });
    expect(msg).toMatch(/unknown system call names: s390_frob, raed/);
  });

  it('but not in a rule marked optional', () => {
    const p = SeccompProfile.parse(profile([{ names: ['read', 'frobnicate'], action: 'SCMP_ACT_ALLOW', optional: true }]));
    const res = resolveProfile(p, hostTarget());
    expect(res.skipped).toEqual(['frobnicate']);
    expect(res.profile.rules[0]!.names).toEqual(['read']);
  });

  it('knows calls newer than libseccomp 2.5.4', () => {
    const p = SeccompProfile.parse(profile([{ names: ['mseal', 'listmount'], action: 'SCMP_ACT_ALLOW' }]));
    expect(resolveProfile(p, hostTarget()).profile.rules[0]!.names).toEqual(['mseal', 'listmount']);
  });

  it('a bad action, and SCMP_ACT_NOTIFY with the reason', () => {
    expect(issues(profile([{ names: ['read'], action: 'ALLOW' }]))).toMatch(/syscalls\.0\.action: Invalid option: expected one of "SCMP_ACT_ALLOW"/);
    expect(issues({ defaultAction: 'SCMP_ACT_DENY' })).toMatch(/defaultAction: Invalid option/);
    expect(issues(profile([{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }]))).toMatch(/needs a seccomp agent/);
  });

  it('malformed args', () => {
    const rule = (args: unknown) => profile([{ names: ['ioctl'], action: 'SCMP_ACT_ERRNO', args }]);
    expect(issues(rule([{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }]))).toMatch(/syscalls\.0\.args\.0\.index: Too big/);
    expect(issues(rule([{ index: 1, value: 1, op: '==' }]))).toMatch(/syscalls\.0\.args\.0\.op: Invalid option/);
    expect(issues(rule([{ index: 1, value: -1, op: 'SCMP_CMP_EQ' }]))).toMatch(/args\.0\.value: Too small/);
    expect(issues(rule([{ index: 1, value: 2 ** 64 - 1, op: 'SCMP_CMP_EQ' }]))).toMatch(/lose precision/);
    expect(issues(rule([{ index: 1, op: 'SCMP_CMP_EQ' }]))).toMatch(/args\.0\.value: Invalid input/);
    expect(issues(rule([{ index: 1, value: 1, op: 'SCMP_CMP_EQ', extra: 1 }]))).toMatch(/Unrecognized key: "extra"/);
    expect(issues(rule([{ index: 1, value: 1, op: 'SCMP_CMP_GT' }, { index: 1, value: 9, op: 'SCMP_CMP_LT' }]))).toMatch(/argument 1 is compared twice/);
  });

  it('malformed rules and errno values', () => {
    expect(issues(profile([{ action: 'SCMP_ACT_ALLOW' }]))).toMatch(/syscalls\.0\.names: a rule needs at least one system call name/);
    expect(issues(profile([{ names: ['Read!'], action: 'SCMP_ACT_ALLOW' }]))).toMatch(/lower-case letters/);
    expect(issues(profile([{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 5000 }]))).toMatch(/errnoRet: Too big/);
    expect(issues(profile([{ names: ['read'], action: 'SCMP_ACT_ERRNO', errno: 'ENOPE' }]))).toMatch(/unknown errno name/);
    // Refused by the schema itself, so a profile that parses is never refused later for it.
    expect(issues(profile([{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, errno: 'ENOSYS' }]))).toMatch(/syscalls\.0\.errnoRet: errnoRet 1 and errno ENOSYS \(38\) disagree/);
    expect(issues(profile([], { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1, defaultErrno: 'ENOSYS' }))).toMatch(/defaultErrnoRet: defaultErrnoRet 1 and errno ENOSYS \(38\) disagree/);
  });

  it('the x32 ABI', () => {
    expect(issues(profile([], { architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'] }))).toMatch(/architectures\.1: the x32 ABI is not supported/);
    expect(issues(profile([], { archMap: [{ architecture: 'SCMP_ARCH_X32' }] }))).toMatch(/the x32 ABI is not supported/);
  });

  it('a profile file that is missing, not JSON, or invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-seccomp-'));
    const file = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
    const via = (path: string) => refusal({ overrides: { security: { seccomp: { profile: path } } } });
    expect(await via(join(dir, 'absent.json'))).toMatch(/cannot load seccomp profile .*absent\.json: ENOENT/);
    expect(await via(file('bad.json', '{'))).toMatch(/cannot load seccomp profile .*bad\.json: .*JSON/);
    expect(await via(file('wrong.json', JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'NOPE' }] }))))
      .toMatch(/invalid seccomp profile .*wrong\.json: syscalls\.0\.action: Invalid option/);
  });

  it('"none" where the code is not trusted', async () => {
    const none = { security: { seccomp: { profile: 'none' as const } } };
    expect(await refusal({ trustLevel: 'untrusted', overrides: none })).toMatch(/"none" is refused at trust level "untrusted"/);
    expect(await refusal({ trustLevel: 'limited', overrides: none })).toMatch(/"none" is refused at trust level "limited"/);
    expect(await seccompPlan(resolvePolicy({ trustLevel: 'trusted', overrides: none }))).toBeNull();
    expect((await explainSeccomp(resolvePolicy({ trustLevel: 'system', overrides: none }))).name).toBe('none');
  });
});

describe('rule precedence, as libseccomp decides it', () => {
  it('an unconditional rule beats conditional ones before or after it, and later unconditional ones', () => {
    const p = SeccompProfile.parse(profile([
      { names: ['ioctl'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 0x5412, op: 'SCMP_CMP_EQ' }] },
      { names: ['ioctl', 'read'], action: 'SCMP_ACT_ALLOW' },
      { names: ['read', 'write'], action: 'SCMP_ACT_ERRNO' },
    ]));
    const res = resolveProfile(p, hostTarget());
    expect(res.profile.rules.map((r) => [r.names, r.action])).toEqual([[['ioctl', 'read'], 'SCMP_ACT_ALLOW'], [['write'], 'SCMP_ACT_ERRNO']]);
    expect(res.overridden).toEqual(['ioctl', 'read']);
  });
});

describe('Docker conditions', () => {
  const rules = [
    { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
    { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
    { names: ['kcmp'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_PTRACE'] } },
    { names: ['kcmp'], action: 'SCMP_ACT_ERRNO', excludes: { caps: ['CAP_SYS_PTRACE'] } },
    { names: ['read'], action: 'SCMP_ACT_ALLOW', excludes: { arches: ['arm64'] } },
    { names: ['write'], action: 'SCMP_ACT_ALLOW', excludes: { minKernel: '5.0' } },
  ];
  const resolved = (arch: 'x86_64' | 'aarch64', kernel: [number, number]) =>
    resolveProfile(SeccompProfile.parse(profile(rules)), { arch, kernel }).profile.rules.map((r) => `${r.names.join()}:${r.action}`);

  it('decides arches, minKernel and caps (pawl holds none) per target', () => {
    expect(resolved('x86_64', [6, 1])).toEqual(['arch_prctl:SCMP_ACT_ALLOW', 'ptrace:SCMP_ACT_ALLOW', 'kcmp:SCMP_ACT_ERRNO', 'read:SCMP_ACT_ALLOW']);
    expect(resolved('aarch64', [4, 4])).toEqual(['kcmp:SCMP_ACT_ERRNO', 'write:SCMP_ACT_ALLOW']);
  });
});
