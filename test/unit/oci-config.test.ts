// config.json for runc/crun is a pure function of the policy and a few run facts: snapshot per
// trust level, and the properties that make it the same sandbox as bwrap's.
import { describe, expect, it } from 'vitest';
import { cgroupLimits } from '../../src/cgroup/limits.js';
import { hostConfig } from '../../src/config/host.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import type { PolicyInput } from '../../src/config/policy.js';
import { rootHostId } from '../../src/runtime/index.js';
import { BINARIES, createCommand, deleteCommand } from '../../src/runtime/oci/cli.js';
import { OciRuntime } from '../../src/runtime/oci/runtime.js';
import { ociConfig as render, type OciFacts } from '../../src/runtime/oci/config.js';
import { MASKED_PATHS, READONLY_PATHS } from '../../src/plan/layout.js';
import type { OciSeccomp } from '../../src/seccomp/index.js';
import { rlimitsFor } from '../../src/plan/rlimits.js';
import { testPlan, type TestPlanOptions } from '../helpers/plan.js';

// A stand-in filter: the seccomp layer's own snapshots cover its rules; here only where it goes.
const SECCOMP: OciSeccomp = { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38, architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] };

function input(trustLevel: string, overrides: PolicyInput = {}, facts: Partial<OciFacts> & TestPlanOptions = {}) {
  const policy = resolvePolicy({ trustLevel, overrides });
  const plan = testPlan(policy, { ioDevices: ['254:0'], seccomp: SECCOMP, ...facts });
  const oci: OciFacts = {
    root: '/var/lib/pawl/runs/ID/root',
    cgroupsPath: '/pawl/run-ID',
    hostIds: { user: 600_000, root: 600_001 },
    userns: true,
    ...facts,
  };
  return { plan, oci, limits: plan.limits };
}
const ociConfig = (i: ReturnType<typeof input>) => render(i.plan, i.oci);

describe('OCI config.json', () => {
  it.each(['untrusted', 'limited', 'trusted', 'system'])('is a pure function of the policy at trust level %s (snapshot)', (level) => {
    expect(ociConfig(input(level))).toMatchSnapshot();
    expect(ociConfig(input(level))).toEqual(ociConfig(input(level)));
  });

  it('runs the program as 1000:1000 with no capabilities, no new privileges and the given rlimits', () => {
    const c = ociConfig(input('untrusted'));
    expect(c.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [] });
    expect(Object.values(c.process.capabilities).every((set) => set.length === 0)).toBe(true);
    expect(c.process.noNewPrivileges).toBe(true);
    expect(c.process.terminal).toBe(false);
    expect(c.process.cwd).toBe('/workspace');
    const rl = Object.fromEntries(c.process.rlimits.map((r) => [r.type, [r.soft, r.hard]]));
    const expected = rlimitsFor(resolvePolicy({ trustLevel: 'untrusted' }), cgroupLimits(resolvePolicy({ trustLevel: 'untrusted' }).resources, null).pidsMax);
    expect(rl).toEqual({
      RLIMIT_NOFILE: [expected.nofile, expected.nofile], RLIMIT_NPROC: [expected.nproc, expected.nproc], RLIMIT_FSIZE: [expected.fsize, expected.fsize],
      RLIMIT_CORE: [0, 0], RLIMIT_CPU: [expected.cpu, expected.cpu],
    });
  });

  it('starts from a cleared environment with only the policy variables', () => {
    const c = ociConfig(input('limited', { env: { FOO: 'bar' } }));
    expect(c.process.env).toEqual(['PATH=/usr/bin', 'HOME=/workspace', 'TMPDIR=/tmp', 'LANG=C.UTF-8', 'FOO=bar', 'PWD=/workspace']);
  });

  it('maps the sandbox uid/gid and its root to two unprivileged host ids in a user namespace', () => {
    const c = ociConfig(input('limited'));
    expect(c.linux.uidMappings).toEqual([{ containerID: 0, hostID: 600_001, size: 1 }, { containerID: 1000, hostID: 600_000, size: 1 }]);
    expect(c.linux.gidMappings).toEqual(c.linux.uidMappings);
    expect(c.linux.namespaces.map((n) => n.type).sort()).toEqual(['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts']);
  });

  it('runs as the unprivileged host id itself where the host forbids user namespaces', () => {
    const c = ociConfig(input('limited', {}, { userns: false }));
    expect(c.linux.uidMappings).toBeUndefined();
    expect(c.linux.namespaces.map((n) => n.type)).not.toContain('user');
    expect(c.process.user).toMatchObject({ uid: 600_000, gid: 600_000 });
  });

  it('shares the host network only in mode full', () => {
    expect(ociConfig(input('limited', { network: { mode: 'full' } })).linux.namespaces.map((n) => n.type)).not.toContain('network');
    expect(ociConfig(input('limited', { network: { mode: 'full' } })).mounts).toContainEqual(expect.objectContaining({ destination: '/etc/resolv.conf', source: '/etc/resolv.conf' }));
    expect(ociConfig(input('limited')).mounts.map((m) => m.destination)).not.toContain('/etc/resolv.conf');
  });

  it('builds a read-only root from the rootfs dirs, with proc, a minimal dev, a size-capped /tmp and /workspace', () => {
    const c = ociConfig(input('limited', { resources: { tmpSize: '10MB' } }));
    expect(c.root).toEqual({ path: '/var/lib/pawl/runs/ID/root', readonly: true });
    const byDst = Object.fromEntries(c.mounts.map((m) => [m.destination, m]));
    for (const dir of ['/usr', '/etc', '/opt/pawl']) {
      expect(byDst[dir]).toEqual({ destination: dir, type: 'bind', source: `/var/lib/pawl/rootfs/HASH${dir}`, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
    }
    expect(byDst['/proc']?.type).toBe('proc');
    expect(byDst['/dev']).toMatchObject({ type: 'tmpfs', options: expect.arrayContaining(['nosuid', 'noexec', 'mode=755']) });
    // The trees the task writes are noexec: Landlock refuses execve there, noexec an executable mapping (dlopen).
    expect(byDst['/tmp']?.options).toEqual(['noexec', 'nosuid', 'nodev', 'mode=1777', `size=${10 * 1024 * 1024}`]);
    expect(byDst['/workspace']).toMatchObject({ type: 'bind', source: '/var/lib/pawl/runs/ID/workspace', options: ['rbind', 'rw', 'nosuid', 'nodev', 'noexec'] });
    expect(c.linux.maskedPaths).toEqual(MASKED_PATHS);
    expect(c.linux.maskedPaths).toContain('/proc/kcore');
    expect(c.linux.readonlyPaths).toEqual(READONLY_PATHS);
    expect(c.linux.readonlyPaths).toContain('/proc/sys');
  });

  it('brings the policy binds in, read-only unless asked', () => {
    const c = ociConfig(input('limited', { filesystem: { binds: [{ src: '/usr/bin/busybox', dst: '/bin/busybox' }, { src: '/srv/data', dst: '/data', readOnly: false }] } }));
    // Sources are the run's staged fds (fs/mounts.ts), never the names: placeholders without a run.
    expect(c.mounts.filter((m) => ['/bin/busybox', '/data'].includes(m.destination))).toEqual([
      { destination: '/bin/busybox', type: 'bind', source: '/proc/SUPERVISOR/fd/FD-OF(/usr/bin/busybox)', options: ['rbind', 'ro', 'nosuid', 'nodev'] },
      { destination: '/data', type: 'bind', source: '/proc/SUPERVISOR/fd/FD-OF(/srv/data)', options: ['rbind', 'rw', 'nosuid', 'nodev', 'noexec'] },
    ]);
    // One the task may execute from (filePermissions.allowExecute), or with Landlock off: not noexec.
    const exec = (filesystem: object) => ociConfig(input('trusted', { filesystem })).mounts.filter((m) => ['/tmp', '/workspace'].includes(m.destination)).map((m) => m.options.includes('noexec'));
    expect(exec({ filePermissions: { allowExecute: ['/workspace/bin'] } })).toEqual([true, false]);
    expect(exec({ landlock: 'off' })).toEqual([false, false]);
    const staged = ociConfig(input('limited', { filesystem: { binds: [{ src: '/srv/data', dst: '/data' }] } }, { sources: ['/var/lib/pawl/stage/ID-0'] }));
    expect(staged.mounts.find((m) => m.destination === '/data')?.source).toBe('/var/lib/pawl/stage/ID-0');
  });

  it('carries the same numbers as pawl\'s own cgroup limits, in the same group', () => {
    const i = input('untrusted');
    const r = ociConfig(i).linux.resources;
    expect(ociConfig(i).linux.cgroupsPath).toBe('/pawl/run-ID');
    expect(r.memory).toEqual({ limit: i.limits.memoryBytes, swap: i.limits.memoryBytes });
    // A task's CPU quota is pawl's to write when the task is handed over (CgroupLimits.cpuAtDispatch);
    // a program's is the runtime's too, from its first instruction.
    expect(r.cpu).toBeUndefined();
    const program = input('untrusted', {}, { command: ['/bin/true'] });
    expect(ociConfig(program).linux.resources.cpu).toEqual({ quota: program.limits.cpuQuotaUs, period: program.limits.cpuPeriodUs });
    expect(r.pids).toEqual({ limit: i.limits.pidsMax });
    expect(r.blockIO).toEqual({
      throttleReadBpsDevice: [{ major: 254, minor: 0, rate: i.limits.io!.readBps }],
      throttleWriteBpsDevice: [{ major: 254, minor: 0, rate: i.limits.io!.writeBps }],
    });
    expect(r.devices).toEqual([{ allow: false, access: 'rwm' }]);
    expect(r.unified).toBeUndefined();
  });

  it('adds memory.oom.group on v2, leaves blockIO out without an io device, and swap out when the degrade step dropped it', () => {
    const v2 = ociConfig(input('limited', { allowDegraded: ['swap-limit'] }, { cgroupVersion: 'v2', ioDevices: [], swapLimit: false })).linux.resources;
    expect(v2.unified).toEqual({ 'memory.oom.group': '1' });
    expect(v2.blockIO).toBeUndefined();
    expect(v2.memory.swap).toBeUndefined();
    // Allowing the gap is not having it: a host with swap accounting still limits swap.
    const allowed = ociConfig(input('limited', { allowDegraded: ['swap-limit'] })).linux.resources;
    expect(allowed.memory.swap).toBe(allowed.memory.limit);
  });

  it('puts the seccomp layer\'s linux.seccomp in verbatim, and none when the policy has none', () => {
    expect(ociConfig(input('limited')).linux.seccomp).toBe(SECCOMP);
    expect(ociConfig(input('system', {}, { seccomp: null })).linux.seccomp).toBeUndefined();
  });

  it('sets the AppArmor profile only when the policy names one', () => {
    expect(ociConfig(input('limited')).process.apparmorProfile).toBeUndefined();
    expect(ociConfig(input('limited', { runtime: 'runc', security: { apparmorProfile: 'pawl-limited' } })).process.apparmorProfile).toBe('pawl-limited');
  });
});

describe('runtime command lines', () => {
  const runc = { name: 'runc' as const, binary: '/usr/sbin/runc', root: '/run/pawl/runc/pawl', hideUnified: null };
  const crun = { name: 'crun' as const, binary: '/usr/bin/crun', root: '/run/pawl/crun/pawl', hideUnified: '/sys/fs/cgroup/unified' };

  it('creates under pawl\'s own --root, with a pid file, a log and the harness fds', () => {
    expect(createCommand(runc, 'ID', '/b', 2)).toEqual({
      file: '/usr/sbin/runc',
      args: ['--root', '/run/pawl/runc/pawl', '--log', '/b/runtime.log', '--log-format', 'json', 'create', '--bundle', '/b', '--pid-file', '/b/init.pid', '--preserve-fds', '2', 'ID'],
    });
    expect(createCommand(runc, 'ID', '/b', 0).args).not.toContain('--preserve-fds');
    expect(deleteCommand(runc, 'ID')).toEqual({ file: '/usr/sbin/runc', args: ['--root', '/run/pawl/runc/pawl', 'delete', '--force', 'ID'] });
  });

  it('runs crun on a hybrid host in a private mount namespace with cgroup2 unmounted', () => {
    const c = deleteCommand(crun, 'ID');
    expect(c.file).toBe('/usr/bin/unshare');
    expect(c.args.slice(0, 4)).toEqual(['--mount', '--propagation', 'private', '--']);
    const script = c.args[6]!;
    expect(script).toMatch(/^\/usr\/bin\/umount -- "\$1" && shift && exec "\$@"$/);
    expect(c.args.slice(7)).toEqual(['pawl-crun', '/sys/fs/cgroup/unified', '/usr/bin/crun', '--root', '/run/pawl/crun/pawl', 'delete', '--force', 'ID']);
  });
});

describe('host ids of an OCI sandbox', () => {
  it('maps its root to the partner of the run\'s host id, inside the configured range', () => {
    const host = hostConfig({ hostIdBase: 600_000, hostIdCount: 65_536 });
    expect(rootHostId(host, 600_000)).toBe(600_001);
    expect(rootHostId(host, 600_001)).toBe(600_000);
    expect(rootHostId(host, 665_535)).toBe(665_534);
    const odd = hostConfig({ hostIdBase: 600_000, hostIdCount: 3 });
    expect(rootHostId(odd, 600_002)).toBe(600_001);
    expect(() => rootHostId(hostConfig({ hostIdCount: 1 }), 600_000)).toThrow(/hostIdCount >= 2/);
  });
});

describe('availability', () => {
  it('refuses a runtime that is not installed, naming the Debian package', () => {
    const saved = BINARIES.crun.paths;
    BINARIES.crun.paths = ['/nonexistent/crun'];
    try {
      expect(() => new OciRuntime('crun').assertAvailable()).toThrow(/runtime "crun" is not installed .*install the Debian package "crun"/);
    } finally {
      BINARIES.crun.paths = saved;
    }
  });
});
