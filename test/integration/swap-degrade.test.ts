// The one degrade step, end to end on this host's real cgroups: a host that cannot hold swap in
// the memory limit refuses the run, unless the policy allows the "swap-limit" gap; then the run
// goes without it, its real cgroup has no memory+swap limit, and the result says so in
// `degraded`. This host HAS swap accounting (memory.memsw.* exist), so the one host fact is
// simulated: swapLimitGap() answers as on a kernel without CONFIG_MEMCG_SWAP. Everything else
// (the step, the plan, the driver, the sandbox, the result) is the real thing.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { probeCgroups } from '../../src/cgroup/probe.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import type { PolicyInput } from '../../src/config/policy.js';
import * as capabilities from '../../src/hostfacts/capabilities.js';
import { Sandbox } from '../../src/index.js';
import { leftovers, testHost } from '../helpers/host.js';

const simulated = vi.hoisted(() => ({ gap: null as string | null }));
vi.mock('../../src/hostfacts/capabilities.js', async (original) => {
  const real = await original<typeof import('../../src/hostfacts/capabilities.js')>();
  return { ...real, swapLimitGap: (...a: Parameters<typeof real.swapLimitGap>) => simulated.gap ?? real.swapLimitGap(...a) };
});

const host = testHost('swapdeg');
const cgroups = await probeCgroups().catch(() => null);
const isV1 = cgroups?.version === 'v1';
const MiB = 1024 ** 2;
const NO_ACCOUNTING = '/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes does not exist (simulated)';

/** Starts a program that runs ~1 s, reads its real memory cgroup's limits while it runs, then its result. */
async function run(policy: PolicyInput) {
  const sb = await Sandbox.start({ policy: resolvePolicy({ overrides: { resources: { memory: '64MB' }, ...policy } }), host, mode: 'program', command: ['/usr/bin/node', '-e', 'setTimeout(() => {}, 1000)'] });
  const dir = join(cgroups!.mounts.memory!, host.cgroupParent, `run-${sb.id}`);
  const [limit, memsw] = await Promise.all([readFile(join(dir, 'memory.limit_in_bytes'), 'utf8'), readFile(join(dir, 'memory.memsw.limit_in_bytes'), 'utf8')]);
  const r = await sb.result();
  return { r, limit: Number(limit), memsw: Number(memsw) };
}

describe('the swap-limit host capability', () => {
  it('is a gap only where swap is active and the kernel has no swap accounting', () => {
    const fake = mkdtempSync(join(tmpdir(), 'pawl-swapgap-'));
    expect(capabilities.swapLimitGap({ version: 'v1', mounts: { memory: fake } }, false)).toBeNull();
    expect(capabilities.swapLimitGap({ version: 'v1', mounts: { memory: fake } }, true)).toBe(`${fake}/memory.memsw.limit_in_bytes does not exist`);
    writeFileSync(join(fake, 'memory.memsw.limit_in_bytes'), '0');
    expect(capabilities.swapLimitGap({ version: 'v1', mounts: { memory: fake } }, true)).toBeNull();
    if (cgroups) expect(capabilities.swapLimitGap(cgroups, true)).toBe(isV1 && !existsSync(join(cgroups.mounts.memory!, 'memory.memsw.limit_in_bytes')) ? expect.any(String) : null);
  });
});

describe.skipIf(!isV1)('one degrade step, on this host\'s real v1 cgroups', () => {
  beforeEach(() => {
    simulated.gap = null;
  });
  afterAll(async () => {
    // (Not the host-wide mount table: other checkouts' suites may run on this machine meanwhile.)
    const { cgroups: groups, scratch, processes } = await leftovers(host);
    expect({ groups, scratch, processes }).toEqual({ groups: [], scratch: [], processes: [] });
  });

  it('with swap accounting: memory+swap is limited, nothing is degraded', async () => {
    const { r, limit, memsw } = await run({ allowDegraded: ['swap-limit'] });
    expect(r.status).toBe('succeeded');
    expect(limit).toBe(64 * MiB);
    expect(memsw).toBe(64 * MiB);
    expect(r.degraded.filter((d) => d.startsWith('swap-limit'))).toEqual([]);
  });

  it('without it, a policy that does not allow the gap is refused, naming the kernel feature', async () => {
    simulated.gap = NO_ACCOUNTING;
    const start = Sandbox.start({ policy: resolvePolicy({}), host, mode: 'program', command: ['/bin/true'] });
    await expect(start).rejects.toMatchObject({ kind: 'HostUnsupported', message: expect.stringMatching(/no memory cgroup swap accounting \(CONFIG_MEMCG_SWAP, boot with swapaccount=1\).*allowDegraded: \["swap-limit"\]/) });
  });

  it('without it, a policy that allows the gap runs without a swap limit, and the result says so', async () => {
    simulated.gap = NO_ACCOUNTING;
    const { r, limit, memsw } = await run({ allowDegraded: ['swap-limit'] });
    expect(r.status).toBe('succeeded');
    expect(limit).toBe(64 * MiB);
    expect(memsw).toBeGreaterThan(64 * MiB); // not written: the kernel's "unlimited"
    expect(r.degraded).toContain(`swap-limit: ${NO_ACCOUNTING}; the memory limit does not hold swap (the run can use swap beyond it)`);
  });
});
