import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { PACKAGE_ROOT } from '../../src/config/host.js';
import { bwrapArgs as render, type ProcMasks } from '../../src/runtime/bwrap/argv.js';
import { MASKED_PATHS } from '../../src/plan/layout.js';
import { SHIM_BINARY, shimCommand, shimRlimits } from '../../src/runtime/bwrap/shim.js';
import { rlimitsFor } from '../../src/plan/rlimits.js';
import { testPlan } from '../helpers/plan.js';

const spec = (overrides = {}, seccompFd: number | null = null) => ({
  plan: testPlan(resolvePolicy({ overrides })),
  fds: { seccomp: seccompFd, ready: null, info: null, sources: 8 },
});
const bwrapArgs = (s: ReturnType<typeof spec>, masks?: ProcMasks) => render(s.plan, s.fds, masks);

const pairs = (args: string[], flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));

describe('bwrap argv', () => {
  // The /proc entries a kernel has vary; the snapshot fixes them so it does not depend on the host.
  const MASKS = { files: ['/proc/keys', '/proc/timer_list'], dirs: ['/proc/acpi'] };

  it('is a pure function of the policy (snapshot)', () => {
    expect(bwrapArgs(spec(), MASKS)).toMatchSnapshot();
    expect(bwrapArgs(spec(), MASKS)).toEqual(bwrapArgs(spec(), MASKS));
  });

  it("masks OCI's /proc paths: files under /dev/null, dirs under an empty read-only tmpfs, after /proc is mounted", () => {
    const a = bwrapArgs(spec(), MASKS).join(' ');
    expect(a).toContain('--proc /proc --ro-bind /dev/null /proc/keys --ro-bind /dev/null /proc/timer_list --perms 0555 --tmpfs /proc/acpi --remount-ro /proc/acpi');
  });

  it('masks exactly the OCI maskedPaths this kernel has', () => {
    const a = bwrapArgs(spec());
    const masked = a.flatMap((x, i) => (x === '--ro-bind' && a[i + 1] === '/dev/null' ? [a[i + 2]!] : x === '--tmpfs' && a[i + 1]!.startsWith('/proc/') ? [a[i + 1]!] : []));
    expect(masked.sort()).toEqual(MASKED_PATHS.filter((p) => existsSync(p)).sort());
  });

  it('unshares every namespace, drops to uid/gid 1000 and every capability', () => {
    const a = bwrapArgs(spec());
    for (const ns of ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup', '--unshare-net']) expect(a).toContain(ns);
    expect(pairs(a, '--uid')).toEqual(['1000']);
    expect(pairs(a, '--gid')).toEqual(['1000']);
    expect(pairs(a, '--cap-drop')).toEqual(['ALL']);
    expect(a).toContain('--die-with-parent');
    expect(a).toContain('--new-session');
  });

  it('builds a read-only root with a size-capped /tmp and /workspace from the scratch dir', () => {
    const a = bwrapArgs(spec({ resources: { tmpSize: '10MB' } }), { files: [], dirs: [] });
    expect(pairs(a, '--remount-ro')).toEqual(['/']);
    expect(a.join(' ')).toContain('--ro-bind /var/lib/pawl/rootfs/HASH/usr /usr');
    expect(a.join(' ')).toContain(`--perms 1777 --size ${10 * 1024 * 1024} --tmpfs /tmp`);
    expect(a.join(' ')).toContain('--bind /var/lib/pawl/runs/ID/workspace /workspace');
    // the remount comes after every mount, or later mount points could not be created
    expect(a.indexOf('--remount-ro')).toBeGreaterThan(a.lastIndexOf('--bind'));
  });

  it('starts from a cleared environment with only the policy variables', () => {
    const a = bwrapArgs(spec({ env: { FOO: 'bar' } }));
    expect(a.indexOf('--clearenv')).toBeLessThan(a.indexOf('--setenv'));
    expect(a.join(' ')).toContain('--setenv FOO bar');
  });

  it('shares the host network only in mode full', () => {
    expect(bwrapArgs(spec({ network: { mode: 'full' } }))).not.toContain('--unshare-net');
    // ... and then its resolver configuration, so names resolve as on the host.
    expect(bwrapArgs(spec({ network: { mode: 'full' } })).join(' ')).toContain('--ro-bind-try /etc/resolv.conf /etc/resolv.conf');
    expect(bwrapArgs(spec({})).join(' ')).not.toContain('resolv.conf');
  });

  it('passes the seccomp filter fd when there is one', () => {
    expect(pairs(bwrapArgs(spec({}, 5)), '--seccomp')).toEqual(['5']);
    expect(bwrapArgs(spec())).not.toContain('--seccomp');
  });
});

describe('the shim', () => {
  it('enters every cgroup, waits for its release, drops to the host id, then execs the runtime (snapshot)', () => {
    const cmd = shimCommand(['/cg/memory/pawl/run-ID/cgroup.procs', '/cg/pids/pawl/run-ID/cgroup.procs'], 32, 612345, { file: '/usr/bin/bwrap', args: ['--', 'x'] });
    expect(cmd.file).toBe(SHIM_BINARY);
    // The binary's path is the checkout's own: the snapshot names it by its place in the package.
    expect({ ...cmd, file: relative(PACKAGE_ROOT, cmd.file) }).toMatchSnapshot();
    expect(cmd.args.join(' ')).toBe('pawl-shim 2 /cg/memory/pawl/run-ID/cgroup.procs /cg/pids/pawl/run-ID/cgroup.procs 612345 32 -- /usr/bin/bwrap -- x');
  });

  it('gets the run\'s other rlimits set on it, nproc only with a host id of its own (pure)', () => {
    const limits = rlimitsFor(resolvePolicy({ trustLevel: 'untrusted' }), 60);
    // nofile (32) is the shim's own, set after its release (shim.c).
    expect(shimRlimits(limits, 612345)).toEqual([['cpu', 0, 31], ['fsize', 1, 104857600], ['core', 4, 0], ['nproc', 6, 61]]);
    expect(shimRlimits(limits, null).map(([name]) => name)).toEqual(['cpu', 'fsize', 'core']);
  });
});
