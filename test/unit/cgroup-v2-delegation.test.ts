// Non-root on cgroup v2: finding the delegated subtree, and the shim's rlimits without a host id.
// The real thing (an unprivileged user in a delegated subtree) runs in the VM: test/vm/delegation.test.mjs.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { delegatedParent, ownCgroupPath } from '../../src/config/cgroup-parent.js';
import { commonAncestor } from '../../src/cgroup/v2/delegation.js';
import { CgroupV2Driver } from '../../src/cgroup/v2/manager.js';
import { shimCommand, shimRlimits } from '../../src/runtime/bwrap/shim.js';

describe('delegated subtree', () => {
  it('reads the own cgroup only on a pure v2 host', () => {
    expect(ownCgroupPath('0::/system.slice/pawl.service/supervisor\n')).toBe('/system.slice/pawl.service/supervisor');
    expect(ownCgroupPath('12:pids:/user.slice\n11:memory:/user.slice\n0::/user.slice/session-1.scope\n')).toBeNull();
    expect(ownCgroupPath('')).toBeNull();
  });

  it('puts pawl beside the supervisor\'s leaf: <own cgroup>/../pawl', () => {
    expect(delegatedParent('/system.slice/pawl.service/supervisor')).toBe('system.slice/pawl.service/pawl');
    expect(delegatedParent('/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope')).toBe('user.slice/user-1000.slice/user@1000.service/app.slice/pawl');
    // Directly below the root nothing can have been delegated.
    expect(delegatedParent('/init.scope')).toBeNull();
    expect(delegatedParent('/')).toBeNull();
  });

  it('finds the common ancestor a process move needs write access to', () => {
    expect(commonAncestor('/svc/supervisor', 'svc/pawl')).toBe('svc');
    expect(commonAncestor('/a/b', 'c/pawl')).toBe('');
    expect(commonAncestor('/', 'pawl')).toBe('');
  });
});

describe('the v2 driver outside its delegation', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'pawl-deleg-'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('names the directory it may not write when it cannot create its subtree', async () => {
    await writeFile(join(tmp, 'cgroup.controllers'), 'cpu io memory pids\n');
    await writeFile(join(tmp, 'cgroup.subtree_control'), 'cpu io memory pids\n');
    const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const d = new CgroupV2Driver({ root: tmp, parent: 'svc/pawl', ops: { mkdir: async () => Promise.reject(denied) } });
    await expect(d.create('run-1', { memoryBytes: 1 << 26, noSwap: true, cpuQuotaUs: 1000, cpuPeriodUs: 100_000, pidsMax: 10, io: null }))
      .rejects.toThrow(new RegExp(`cannot create cgroup ${tmp}/svc: uid \\d+ has no write access to ${tmp} \\(EACCES\\).*Delegate=yes`));
  });
});

describe('the shim without a host id (not root)', () => {
  const rlimits = { nofile: 64, nproc: 61, fsize: 1 << 20, core: 0, cpu: 5 };
  const launch = { file: '/usr/bin/bwrap', args: ['--', 'x'] };

  it('leaves RLIMIT_NPROC alone: it would count the supervisor and the user\'s other sandboxes', () => {
    expect(shimRlimits(rlimits, null).map(([name]) => name)).not.toContain('nproc');
    expect(shimRlimits(rlimits, 612345)).toContainEqual(['nproc', 6, 61]);
    // And no host id to drop to: the shim keeps the caller's ids.
    expect(shimCommand(['/cg/run/cgroup.procs'], 64, null, launch).args.slice(1, 6)).toEqual(['1', '/cg/run/cgroup.procs', '-', '64', '--']);
  });
});
