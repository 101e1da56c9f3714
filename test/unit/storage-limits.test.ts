// Storage as the plan and the verdict see it: one io limit line per device for every backend,
// the storage switches in the policy, and the kernel's "workspace full" fact in the verdict.
import { describe, expect, it } from 'vitest';
import { blkioWrites } from '../../src/cgroup/v1/blkio.js';
import { ioWrites } from '../../src/cgroup/v2/io.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import { ociConfig } from '../../src/runtime/oci/config.js';
import { classify, type RunFacts } from '../../src/supervisor/classify.js';
import { limitsFor } from '../../src/plan/plan.js';
import { testPlan } from '../helpers/plan.js';

const MiB = 1024 * 1024;
const policy = resolvePolicy();
const io = limitsFor(policy, ['253:0', '254:0'], true, 'task').io!;

describe('io limits over several devices', () => {
  it('no device: no io limit at all (the io controller is not even asked for)', () => {
    expect(limitsFor(policy, [], true, 'task').io).toBeNull();
  });

  it('v2 io.max gets one line per device', () => {
    expect(ioWrites('/g', io).map((w) => w.value)).toEqual([`253:0 rbps=${10 * MiB} wbps=${5 * MiB}`, `254:0 rbps=${10 * MiB} wbps=${5 * MiB}`]);
  });

  it('v1 blkio gets a read and a write rule per device', () => {
    expect(blkioWrites('/g', io).map((w) => `${w.path.split('/').pop()} ${w.value}`)).toEqual([
      `blkio.throttle.read_bps_device 253:0 ${10 * MiB}`, `blkio.throttle.write_bps_device 253:0 ${5 * MiB}`,
      `blkio.throttle.read_bps_device 254:0 ${10 * MiB}`, `blkio.throttle.write_bps_device 254:0 ${5 * MiB}`,
    ]);
  });

  it('runc/crun get every device in linux.resources.blockIO', () => {
    const limits = limitsFor(policy, ['253:0', '254:0'], true, 'task');
    expect(testPlan(policy, { ioDevices: ['253:0', '254:0'] }).limits).toEqual(limits);
    const c = ociConfig(testPlan(policy, { ioDevices: ['253:0', '254:0'], cgroupVersion: 'v2', command: ['x'] }), {
      root: '/b/root', cgroupsPath: '/pawl/run-ID', hostIds: { user: 600001, root: 600000 }, userns: true,
    });
    expect(c.linux.resources.blockIO).toEqual({
      throttleReadBpsDevice: [{ major: 253, minor: 0, rate: 10 * MiB }, { major: 254, minor: 0, rate: 10 * MiB }],
      throttleWriteBpsDevice: [{ major: 253, minor: 0, rate: 5 * MiB }, { major: 254, minor: 0, rate: 5 * MiB }],
    });
  });
});

describe('storage policy', () => {
  it('runs with the storage gaps by default; the operator can make them fatal', () => {
    expect(policy.storage).toEqual({ requireIoDevice: false, requireWorkspaceFs: false });
    expect(resolvePolicy({ overrides: { storage: { requireIoDevice: true } } }).storage.requireIoDevice).toBe(true);
  });

  it('a task may lower its workspace inode count, never raise it', () => {
    expect(resolvePolicy({ task: { resources: { diskInodes: 100 } } }).resources.diskInodes).toBe(100);
    expect(resolvePolicy({ task: { resources: { diskInodes: 10_000_000 } } }).resources.diskInodes).toBe(8192);
  });
});

describe('the workspace-full fact in the verdict', () => {
  const base: RunFacts = {
    mode: 'program', policy, killReason: null, exitCode: 1, signal: null, setupFailed: false, oomKills: 0, pidsLimitHits: 0,
    stderr: '', reply: null, replyProblem: null, seccompKills: [], refusesWithEperm: null, cpuMs: 1, workspaceBytes: 4096,
  };
  it('a program that failed while its workspace filesystem was full ran out of disk', () => {
    expect(classify({ ...base, workspaceFull: true }).error).toMatchObject({ kind: 'ResourceExhausted', resource: 'disk', limit_value: 100 * MiB });
    expect(classify({ ...base, workspaceFull: false }).error?.kind).toBe('TaskError');
  });
  it('one that coped (exit 0, or a task that returned) succeeded', () => {
    expect(classify({ ...base, exitCode: 0, workspaceFull: true }).status).toBe('succeeded');
    expect(classify({ ...base, mode: 'task', exitCode: 0, reply: { ok: true, output: 1, violations: [] }, workspaceFull: true }).status).toBe('succeeded');
  });
  it('a task that died without a reply while it was full ran out of disk', () => {
    expect(classify({ ...base, mode: 'task', exitCode: 1, workspaceFull: true }).error?.resource).toBe('disk');
  });
});
