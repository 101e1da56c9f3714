// Every acceptance rule is the schema's: a policy is refused when it is parsed, naming the field,
// and a policy that parses is never refused later for a policy reason (only a host may refuse it:
// hostfacts/capabilities.ts).
import { describe, expect, it } from 'vitest';
import { cgroupLimits } from '../../src/cgroup/limits.js';
import { checkParent } from '../../src/cgroup/options.js';
import { hostConfig } from '../../src/config/host.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import type { PolicyInput } from '../../src/config/policy.js';
import { assertSupported } from '../../src/supervisor/host.js';
import { profileSource } from '../../src/seccomp/profiles.js';
import { PawlError } from '../../src/errors.js';

const refusal = (overrides: PolicyInput, trustLevel = 'limited') => {
  try {
    resolvePolicy({ trustLevel, overrides });
  } catch (e) {
    expect(e).toBeInstanceOf(PawlError);
    expect((e as PawlError).kind).toBe('InvalidPolicy');
    return (e as Error).message;
  }
  throw new Error('accepted');
};

describe('policy acceptance rules live in the schema', () => {
  it('a CPU quota under the kernel minimum', () => {
    expect(refusal({ resources: { cpuPercent: 0.5 } })).toMatch(/resources\.cpuPercent: .*500 us quota; the kernel needs at least 1000 us/);
    // At the minimum it parses, and the limits the drivers get are computed without a refusal.
    const p = resolvePolicy({ overrides: { resources: { cpuPercent: 1 } } });
    expect(cgroupLimits(p.resources, null).cpuQuotaUs).toBe(1000);
  });

  it('switching seccomp off below trust level trusted', async () => {
    const none = { security: { seccomp: { profile: 'none' as const } } };
    expect(refusal(none, 'untrusted')).toMatch(/security\.seccomp\.profile: "none" is refused at trust level "untrusted"/);
    expect(refusal(none, 'limited')).toMatch(/"none" is refused at trust level "limited"/);
    expect(await profileSource(resolvePolicy({ trustLevel: 'trusted', overrides: none }))).toBeNull();
  });

  it('an AppArmor profile for bwrap, which cannot apply one', () => {
    expect(refusal({ security: { apparmorProfile: 'pawl-limited' } })).toMatch(/security\.apparmorProfile: is applied by runc\/crun only/);
    // With runc it parses; only the host may refuse it then (no AppArmor in this kernel).
    const p = resolvePolicy({ overrides: { runtime: 'runc', security: { apparmorProfile: 'pawl-limited' } } });
    let host: unknown = null;
    try {
      assertSupported(p);
    } catch (e) {
      host = e;
    }
    if (host) expect(host).toMatchObject({ kind: 'HostUnsupported' });
  });

  it('a bind path with a control character or a backslash (no AppArmor rule can name it)', () => {
    expect(refusal({ filesystem: { binds: [{ src: '/data\nx', dst: '/data' }] } })).toMatch(/filesystem\.binds\.0\.src: must not hold a control character/);
    expect(refusal({ filesystem: { binds: [{ src: '/data', dst: '/da\\ta' }] } })).toMatch(/filesystem\.binds\.0\.dst: must not hold a control character or a backslash/);
  });
});

describe('the cgroup parent has one rule', () => {
  it('what the host config accepts every driver accepts, and the reverse', () => {
    for (const parent of ['pawl', 'system.slice/pawl-ci', 'a/b/pawl.x']) {
      expect(hostConfig({ cgroupParent: parent }).cgroupParent).toBe(parent);
      expect(checkParent(parent)).toBe(parent);
    }
    for (const parent of ['system.slice', '../pawl', 'pawl/..', '/pawl', 'pawl/']) {
      expect(() => hostConfig({ cgroupParent: parent })).toThrow(/invalid host configuration.*cgroupParent/);
      expect(() => checkParent(parent)).toThrow(/invalid cgroup parent/);
    }
  });
});
