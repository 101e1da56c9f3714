// AppArmor and SELinux on real runs on this host, whose kernel has neither (HOST-FACTS.md):
// required is refused before anything is created, with a message naming the missing kernel
// feature; optional runs, with the gap named in the result's `degraded`. Where AppArmor IS
// enabled these cases do not apply (skipped); its enforcement is checked in the VM
// (test/vm/apparmor.test.mjs) where the kernel has it.
import { afterAll, describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';
import type { PolicyInput } from '../../src/config/policy.js';
import { execProgram } from '../../src/index.js';
import { apparmorEnabled, apparmorProfile } from '../../src/lsm/apparmor/index.js';
import { readLsmHost } from '../../src/lsm/host.js';
import { leftovers, testHost } from '../helpers/host.js';

const host = testHost('lsm');
const BUSYBOX = { src: '/usr/bin/busybox', dst: '/bin/busybox' };
const LABELS = { processLabel: 'system_u:system_r:container_t:s0', mountLabel: 'system_u:object_r:container_file_t:s0' };
const run = (policy: PolicyInput) => execProgram(['/bin/busybox', 'true'], { policy: { ...policy, filesystem: { binds: [BUSYBOX] } }, host });

afterAll(async () => {
  expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
});

describe.skipIf(apparmorEnabled())('AppArmor on a kernel without it', () => {
  it.each(['bwrap', 'runc', 'crun'] as const)('required is refused, naming the missing kernel feature (%s)', async (runtime) => {
    await expect(run({ runtime, security: { apparmor: 'required' } })).rejects.toMatchObject({
      kind: 'HostUnsupported',
      message: expect.stringMatching(/^security\.apparmor is required, but this kernel has no AppArmor \(\/sys\/module\/apparmor\/parameters\/enabled is missing or not Y/),
    });
  });

  it.each(['bwrap', 'runc'] as const)('optional runs, with the named degradation in the result (%s)', async (runtime) => {
    const policy: PolicyInput = { runtime, security: { apparmor: 'optional' } };
    const r = await run(policy);
    expect(r.status).toBe('succeeded');
    const name = apparmorProfile(resolvePolicy({ overrides: { ...policy, filesystem: { binds: [BUSYBOX] } } })).name;
    expect(r.degraded).toEqual([`apparmor: this kernel has no AppArmor (/sys/module/apparmor/parameters/enabled is missing or not Y: the kernel was built without CONFIG_SECURITY_APPARMOR or booted without apparmor in lsm=); the generated profile ${name} is not applied (security.apparmor is optional)`]);
  });

  it('off (the default) runs with nothing degraded', async () => {
    const r = await run({});
    expect([r.status, r.degraded]).toEqual(['succeeded', []]);
  });
});

describe.skipIf(readLsmHost().selinux.enabled)('SELinux labels on a kernel without it', () => {
  it.each(['bwrap', 'runc'] as const)('required (the default once labels are set) is refused (%s)', async (runtime) => {
    await expect(run({ runtime, security: { selinux: LABELS } })).rejects.toMatchObject({
      kind: 'HostUnsupported',
      message: expect.stringMatching(/^security\.selinux labels are set \(mode required\), but SELinux is not enabled in this kernel \(\/sys\/fs\/selinux\/enforce is missing/),
    });
  });

  it('optional runs, with the named degradation', async () => {
    const r = await run({ runtime: 'runc', security: { selinux: { ...LABELS, mode: 'optional' } } });
    expect(r.status).toBe('succeeded');
    expect(r.degraded).toEqual([expect.stringMatching(/^selinux: SELinux is not enabled in this kernel .*labels not applied \(security\.selinux\.mode is optional\)$/)]);
  });
});
