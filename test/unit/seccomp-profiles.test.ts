import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ESM script without type declarations
import { BASE, buildProfile, LEVELS, low32Complement, profileText } from '../../native-profiles/generate.mjs';
import { exportOci } from '../../src/seccomp/index.js';
import { shippedProfile, shippedProfilePath } from '../../src/seccomp/profiles.js';
import type { SeccompProfile } from '../../src/config/seccomp.js';

type Level = 'untrusted' | 'limited' | 'trusted' | 'system';

describe.skipIf(!existsSync(BASE))('native-profiles/', () => {
  const base = () => JSON.parse(readFileSync(BASE, 'utf8'));

  it.each(LEVELS as Level[])('pawl-%s.json is what generate.mjs makes from the container profile', (level) => {
    expect(readFileSync(shippedProfilePath(level), 'utf8'), 'run: node native-profiles/generate.mjs').toBe(profileText(level, base()));
  });

  it('untrusted is limited with every EPERM turned into a kill', () => {
    const limited = JSON.stringify(buildProfile('limited', base()));
    const untrusted = JSON.stringify(buildProfile('untrusted', base()));
    expect(limited.replaceAll('"action":"SCMP_ACT_ERRNO","errnoRet":1', '"action":"SCMP_ACT_KILL_PROCESS"')).toBe(untrusted);
    expect(JSON.stringify(buildProfile('trusted', base()))).toBe(limited);
    expect(JSON.stringify(buildProfile('system', base()))).toBe(limited);
  });
});

describe('shipped profiles', () => {
  // libseccomp lets the first unconditional rule of a call win: a second one with another action,
  // or a conditional one, would be dead text that reads as if it applied.
  it.each(LEVELS as Level[])('%s: a call with an unconditional rule has no rule with another action or conditions', (level) => {
    const plain = new Map<string, Set<string>>();
    const conditional = new Set<string>();
    for (const r of shippedProfile(level).syscalls!) {
      for (const n of r.names!) {
        if (r.args?.length) conditional.add(n);
        else plain.set(n, (plain.get(n) ?? new Set()).add(`${r.action}/${r.errnoRet}`));
      }
    }
    expect([...plain].filter(([n, actions]) => actions.size > 1 || conditional.has(n)).map(([n]) => n)).toEqual([]);
  });

  it('deny every call the issue names, with EPERM or a kill', () => {
    const denied = (p: SeccompProfile) => new Set(p.syscalls!.filter((r) => r.action !== 'SCMP_ACT_ALLOW' && !r.args?.length).flatMap((r) => r.names!));
    const required = ['mount', 'umount2', 'pivot_root', 'chroot', 'unshare', 'setns', 'ptrace', 'process_vm_readv', 'process_vm_writev', 'bpf',
      'perf_event_open', 'keyctl', 'add_key', 'request_key', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module',
      'open_by_handle_at', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register'];
    for (const level of LEVELS as Level[]) expect(required.filter((n) => !denied(shippedProfile(level)).has(n)), level).toEqual([]);
  });
});

describe('low32Complement', () => {
  const matches = (parts: { mask: number; value: number }[], v: number) => parts.filter((p) => ((v & p.mask) >>> 0) === p.value).length;

  it('matches every 32-bit value outside the set exactly once, and none inside', () => {
    for (const set of [[0x5412, 0x541c], [16, 17, 38, 40], [0], [0xffffffff], [1, 0x80000000]]) {
      const parts = low32Complement(set);
      for (const v of set) expect(matches(parts, v)).toBe(0);
      for (let i = 0; i < 20_000; i++) {
        const v = (Math.random() * 2 ** 32) >>> 0;
        expect(matches(parts, v)).toBe(set.includes(v) ? 0 : 1);
      }
      for (const v of set.flatMap((s) => [s ^ 1, s ^ 0x80000000, (s + 1) >>> 0, (s - 1) >>> 0])) expect(matches(parts, v)).toBe(set.includes(v) ? 0 : 1);
    }
  });

  it('needs 34 rules for the two denied ioctls', () => {
    expect(low32Complement([0x5412, 0x541c])).toHaveLength(34);
  });
});

describe('OCI linux.seccomp per trust level', () => {
  it.each(LEVELS as Level[])('%s (x86_64)', async (level) => {
    await expect(`${JSON.stringify(exportOci(level, 'x86_64'), null, 2)}\n`).toMatchFileSnapshot(`./seccomp-snapshots/oci-${level}-x86_64.json`);
  });

  it('limited (aarch64): no x86-only names, aarch64 architecture', async () => {
    const oci = exportOci('limited', 'aarch64');
    expect(oci.architectures).toEqual(['SCMP_ARCH_AARCH64']);
    const names = oci.syscalls.flatMap((s) => s.names);
    expect(names).not.toContain('open');
    expect(names).not.toContain('arch_prctl');
    expect(names).toContain('openat');
    await expect(`${JSON.stringify(oci, null, 2)}\n`).toMatchFileSnapshot('./seccomp-snapshots/oci-limited-aarch64.json');
  });
});
