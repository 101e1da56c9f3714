// The v1 driver against a fake /sys/fs/cgroup: directories a test creates, filled with the
// control files (and realistic contents) a 6.x kernel puts in a new v1 cgroup.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseCgroupMounts } from '../../src/cgroup/probe.js';
import type { CgroupLimits } from '../../src/cgroup/types.js';
import { CgroupV1Driver } from '../../src/cgroup/v1/manager.js';
import { killUntilEmpty } from '../../src/cgroup/files.js';
import type { HostOps } from '../../src/cgroup/options.js';
import { PawlError } from '../../src/errors.js';

const MiB = 1024 ** 2;
const UNLIMITED = '9223372036854771712\n';

const CONTROL_FILES: Record<string, Record<string, string>> = {
  memory: {
    'memory.limit_in_bytes': UNLIMITED,
    'memory.memsw.limit_in_bytes': UNLIMITED,
    'memory.swappiness': '60\n',
    'memory.usage_in_bytes': '0\n',
    'memory.max_usage_in_bytes': '0\n',
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
    'memory.failcnt': '0\n',
  },
  cpu: { 'cpu.cfs_period_us': '100000\n', 'cpu.cfs_quota_us': '-1\n' },
  cpuacct: { 'cpuacct.usage': '0\n' },
  pids: { 'pids.max': 'max\n', 'pids.current': '0\n', 'pids.peak': '0\n', 'pids.events': 'max 0\n' },
  blkio: {
    'blkio.throttle.read_bps_device': '',
    'blkio.throttle.write_bps_device': '',
    'blkio.throttle.io_service_bytes': 'Total 0\n',
  },
  freezer: { 'freezer.state': 'THAWED\n' },
};

interface FakeTree {
  mounts: Record<string, string>;
  ops: HostOps;
  killed: Array<{ pid: number; signal: string; freezerState: string }>;
  /** rmdir calls that answered EBUSY. */
  busy: string[];
}

interface FakeOptions {
  /** cpu and cpuacct co-mounted at ".../cpu,cpuacct", as systemd hosts have them. */
  combined?: boolean;
  /** Control files this fake kernel does not provide. */
  omit?: string[];
  /** Controllers not mounted at all. */
  unmounted?: string[];
  swap?: boolean;
  /** How many rmdir calls answer EBUSY first, as right after the last process exits. */
  busyTimes?: number;
  /** Whether SIGKILL removes the PID from the group (false: a process that never leaves). */
  killWorks?: boolean;
}

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pawl-cgroup-v1-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function fakeTree(o: FakeOptions = {}): Promise<FakeTree> {
  const base = await mkdtemp(join(tmp, 'sys-fs-cgroup-'));
  const mountDirs: Record<string, string[]> = o.combined
    ? { memory: ['memory'], 'cpu,cpuacct': ['cpu', 'cpuacct'], pids: ['pids'], blkio: ['blkio'], freezer: ['freezer'] }
    : { memory: ['memory'], cpu: ['cpu'], cpuacct: ['cpuacct'], pids: ['pids'], blkio: ['blkio'], freezer: ['freezer'] };
  const mounts: Record<string, string> = {};
  for (const [dir, controllers] of Object.entries(mountDirs)) {
    const live = controllers.filter((c) => !o.unmounted?.includes(c));
    if (live.length === 0) continue;
    await mkdir(join(base, dir));
    await writeFile(join(base, dir, 'cgroup.procs'), '');
    for (const c of live) mounts[c] = join(base, dir);
  }
  const controllersAt = (path: string) => Object.keys(mounts).filter((c) => path.startsWith(mounts[c]! + '/'));
  const procsFiles = () => Object.values(mounts).flatMap((m) => findProcs(m));
  const tree: FakeTree = { mounts, killed: [], busy: [], ops: undefined as unknown as HostOps };
  let busyLeft = o.busyTimes ?? 0;
  tree.ops = {
    mkdir: async (path) => {
      await mkdir(path);
      await writeFile(join(path, 'cgroup.procs'), '');
      for (const c of controllersAt(path)) {
        for (const [file, content] of Object.entries(CONTROL_FILES[c]!)) {
          if (!o.omit?.includes(file)) await writeFile(join(path, file), content);
        }
      }
    },
    rmdir: async (path) => {
      if (!existsSync(path)) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      if (busyLeft > 0 || (await readFile(join(path, 'cgroup.procs'), 'utf8')).trim() !== '') {
        busyLeft--;
        tree.busy.push(path);
        throw Object.assign(new Error(`EBUSY: ${path}`), { code: 'EBUSY' });
      }
      await rm(path, { recursive: true });
    },
    kill: (pid, signal) => {
      const freezer = procsFiles().find((f) => f.startsWith(mounts.freezer!))!.replace('cgroup.procs', 'freezer.state');
      tree.killed.push({ pid, signal, freezerState: existsSync(freezer) ? readFileSync(freezer, 'utf8').trim() : '' });
      if (o.killWorks === false) return;
      for (const f of procsFiles()) {
        const left = readFileSync(f, 'utf8').split('\n').filter((l) => l !== '' && Number(l) !== pid);
        writeFileSync(f, left.map((l) => `${l}\n`).join(''));
      }
    },
    swapActive: async () => o.swap ?? false,
  };
  return tree;
}

/** cgroup.procs files of the run groups below a mount (not the mount's own). */
function findProcs(mount: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) {
        walk(join(dir, e.name));
        out.push(join(dir, e.name, 'cgroup.procs'));
      }
    }
  };
  walk(mount);
  return out.filter((f) => existsSync(f));
}

const limits: CgroupLimits = {
  memoryBytes: 64 * MiB,
  noSwap: true,
  cpuQuotaUs: 20_000,
  cpuPeriodUs: 100_000,
  pidsMax: 120,
  io: { devices: ['254:0'], readBps: 10 * MiB, writeBps: 5 * MiB },
};

const read = (path: string) => readFile(path, 'utf8');

/** The PawlError a promise rejects with (fails the test if it resolves or throws something else). */
async function rejection(p: Promise<unknown>): Promise<PawlError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(PawlError);
  return e as PawlError;
}

describe('parseCgroupMounts', () => {
  it('finds split cpu and cpuacct hierarchies and the hybrid cgroup2 mount (this host)', () => {
    const mountinfo = [
      '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
      '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
      '33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct',
      '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
      '37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer',
      '38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio',
      '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
      '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
    ].join('\n');
    expect(parseCgroupMounts(mountinfo)).toEqual({
      v1: {
        cpu: '/sys/fs/cgroup/cpu',
        cpuacct: '/sys/fs/cgroup/cpuacct',
        memory: '/sys/fs/cgroup/memory',
        freezer: '/sys/fs/cgroup/freezer',
        blkio: '/sys/fs/cgroup/blkio',
        pids: '/sys/fs/cgroup/pids',
      },
      unified: '/sys/fs/cgroup/unified',
    });
  });

  it('reads a co-mounted "cpu,cpuacct" hierarchy from the mount options, preferring the hierarchy root over bind mounts', () => {
    const mountinfo = [
      '900 800 0:99 /docker/abc /mnt/my\\040cg rw - cgroup cgroup rw,memory',
      '30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct',
      '31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory',
      '32 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_cls,net_prio',
    ].join('\n');
    const { v1, unified } = parseCgroupMounts(mountinfo);
    expect(v1).toMatchObject({ cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory' });
    expect(unified).toBeNull();
  });

  it('unescapes mount points', () => {
    const { v1 } = parseCgroupMounts('900 800 0:99 / /mnt/my\\040cg rw - cgroup cgroup rw,memory');
    expect(v1.memory).toBe('/mnt/my cg');
  });
});

describe('CgroupV1Driver', () => {
  it('plans the limit writes in the order the kernel needs them', async () => {
    const t = await fakeTree();
    const d = new CgroupV1Driver({ mounts: t.mounts, parent: 'pawl', ops: t.ops });
    const m = t.mounts;
    expect(d.plan('run-1', limits).map(({ path, value }) => ({ path, value }))).toEqual([
      { path: `${m.memory}/pawl/run-1/memory.swappiness`, value: '0' },
      { path: `${m.memory}/pawl/run-1/memory.limit_in_bytes`, value: '67108864' },
      { path: `${m.memory}/pawl/run-1/memory.memsw.limit_in_bytes`, value: '67108864' },
      { path: `${m.memory}/pawl/run-1/memory.kmem.tcp.limit_in_bytes`, value: '8388608' },
      { path: `${m.cpu}/pawl/run-1/cpu.cfs_period_us`, value: '100000' },
      { path: `${m.cpu}/pawl/run-1/cpu.cfs_quota_us`, value: '20000' },
      { path: `${m.pids}/pawl/run-1/pids.max`, value: '120' },
      { path: `${m.blkio}/pawl/run-1/blkio.throttle.read_bps_device`, value: '254:0 10485760' },
      { path: `${m.blkio}/pawl/run-1/blkio.throttle.write_bps_device`, value: '254:0 5242880' },
    ]);
  });

  it('creates one dir per hierarchy under the parent and writes the exact limits', async () => {
    const t = await fakeTree();
    const d = new CgroupV1Driver({ mounts: t.mounts, ops: t.ops });
    const run = await d.create('run-1', limits);
    const m = t.mounts;
    const dirs = ['memory', 'cpu', 'cpuacct', 'pids', 'blkio', 'freezer'].map((c) => `${m[c]}/pawl/run-1`);
    expect(run.version).toBe('v1');
    expect([...run.dirs].sort()).toEqual([...dirs].sort());
    expect([...run.procsFiles].sort()).toEqual(dirs.map((x) => `${x}/cgroup.procs`).sort());
    const at = (c: string, f: string) => read(`${m[c]}/pawl/run-1/${f}`);
    expect(await at('memory', 'memory.limit_in_bytes')).toBe('67108864');
    expect(await at('memory', 'memory.memsw.limit_in_bytes')).toBe('67108864');
    expect(await at('memory', 'memory.swappiness')).toBe('0');
    expect(await at('cpu', 'cpu.cfs_period_us')).toBe('100000');
    expect(await at('cpu', 'cpu.cfs_quota_us')).toBe('20000');
    expect(await at('pids', 'pids.max')).toBe('120');
    expect(await at('blkio', 'blkio.throttle.read_bps_device')).toBe('254:0 10485760');
    expect(await at('blkio', 'blkio.throttle.write_bps_device')).toBe('254:0 5242880');
    expect(await at('freezer', 'freezer.state')).toBe('THAWED\n');
  });

  it('makes its parent again when it went after an earlier run (the driver makes it once, then trusts it)', async () => {
    const t = await fakeTree();
    const d = new CgroupV1Driver({ mounts: t.mounts, ops: t.ops });
    await (await d.create('run-1', limits)).remove();
    for (const m of new Set(Object.values(t.mounts))) await rm(join(m!, 'pawl'), { recursive: true, force: true });
    await d.create('run-2', limits);
    expect(await read(join(t.mounts.pids!, 'pawl/run-2/pids.max'))).toBe('120');
  });

  it('uses one directory for a co-mounted cpu,cpuacct hierarchy', async () => {
    const t = await fakeTree({ combined: true });
    const d = new CgroupV1Driver({ mounts: t.mounts, ops: t.ops });
    const run = await d.create('run-1', limits);
    expect(run.dirs).toHaveLength(5);
    const cpuDir = join(t.mounts.cpu!, 'pawl', 'run-1');
    expect(t.mounts.cpu).toMatch(/\/cpu,cpuacct$/);
    expect(run.dirs).toContain(cpuDir);
    expect(await read(join(cpuDir, 'cpu.cfs_quota_us'))).toBe('20000');
    await writeFile(join(cpuDir, 'cpuacct.usage'), '1234567890\n');
    expect((await run.readStats()).cpuUsageUs).toBe(1_234_567);
  });

  it('creates groups only in the hierarchies it uses, never in cpuset or devices', async () => {
    const t = await fakeTree();
    const base = join(t.mounts.memory!, '..');
    for (const other of ['cpuset', 'devices']) await mkdir(join(base, other));
    const d = new CgroupV1Driver({ mounts: { ...t.mounts, cpuset: join(base, 'cpuset'), devices: join(base, 'devices') }, ops: t.ops });
    const run = await d.create('run-1', limits);
    expect(run.dirs).toHaveLength(6);
    expect(await readdir(join(base, 'cpuset'))).toEqual([]);
    expect(await readdir(join(base, 'devices'))).toEqual([]);
  });

  it('defaults to <root>/<controller> mounts', async () => {
    const t = await fakeTree();
    const root = join(t.mounts.memory!, '..');
    const d = new CgroupV1Driver({ root, parent: 'pawl-test', ops: t.ops });
    const run = await d.create('run-2', { ...limits, io: null });
    expect(run.dirs).toContain(join(root, 'memory', 'pawl-test', 'run-2'));
    expect(await d.list()).toEqual(['run-2']);
  });

  it('fails closed without swap accounting while swap is active, and leaves no dirs behind', async () => {
    const t = await fakeTree({ omit: ['memory.memsw.limit_in_bytes'], swap: true });
    const d = new CgroupV1Driver({ mounts: t.mounts, ops: t.ops });
    const err = await rejection(d.create('run-1', limits));
    expect(err.kind).toBe('HostUnsupported');
    expect(err.message).toMatch(/memory\.memsw\.limit_in_bytes.*swap accounting/);
    for (const mount of new Set(Object.values(t.mounts))) {
      const entries = await readdir(join(mount, 'pawl'), { withFileTypes: true });
      expect(entries.filter((e) => e.isDirectory())).toEqual([]);
    }
  });

  it('skips memsw when no swap is active', async () => {
    const t = await fakeTree({ omit: ['memory.memsw.limit_in_bytes', 'memory.swappiness'], swap: false });
    const d = new CgroupV1Driver({ mounts: t.mounts, ops: t.ops });
    const run = await d.create('run-1', limits);
    expect(existsSync(join(t.mounts.memory!, 'pawl/run-1/memory.memsw.limit_in_bytes'))).toBe(false);
    expect(existsSync(join(t.mounts.memory!, 'pawl/run-1/memory.swappiness'))).toBe(false);
    expect(await read(join(t.mounts.memory!, 'pawl/run-1/memory.limit_in_bytes'))).toBe('67108864');
    await run.remove();
  });

  it('names a missing controller or control file', async () => {
    const noPids = await fakeTree({ unmounted: ['pids'] });
    expect(() => new CgroupV1Driver({ mounts: noPids.mounts, ops: noPids.ops })).toThrow(/v1 "pids" controller is not mounted/);

    const noBlkio = await fakeTree({ unmounted: ['blkio'] });
    const d = new CgroupV1Driver({ mounts: noBlkio.mounts, ops: noBlkio.ops, parent: 'pawl-b' });
    await expect(d.create('run-1', limits)).rejects.toThrow(/v1 "blkio" controller is not mounted/);
    const run = await d.create('run-2', { ...limits, io: null });
    expect(run.dirs).toHaveLength(5);
    expect((await run.readStats()).ioReadBytes).toBe(0);

    const noPidsMax = await fakeTree({ omit: ['pids.max'] });
    const d2 = new CgroupV1Driver({ mounts: noPidsMax.mounts, ops: noPidsMax.ops, parent: 'pawl-c' });
    const err = await rejection(d2.create('run-1', limits));
    expect(err.kind).toBe('HostUnsupported');
    expect(err.message).toMatch(/pids\.max does not exist.*cgroup pids controller/);
  });

  it('refuses to reuse an existing run group', async () => {
    const t = await fakeTree();
    const d = new CgroupV1Driver({ mounts: t.mounts, ops: t.ops });
    await d.create('run-1', limits);
    await expect(d.create('run-1', limits)).rejects.toThrow(/already exists/);
    expect(existsSync(join(t.mounts.memory!, 'pawl/run-1/memory.limit_in_bytes'))).toBe(true);
  });

  it('parses realistic stats files', async () => {
    const t = await fakeTree();
    const d = new CgroupV1Driver({ mounts: t.mounts, ops: t.ops });
    const run = await d.create('run-1', limits);
    const at = (c: string, f: string) => join(t.mounts[c]!, 'pawl/run-1', f);
    await writeFile(at('memory', 'memory.usage_in_bytes'), '1470464\n');
    await writeFile(at('memory', 'memory.max_usage_in_bytes'), '67108864\n');
    await writeFile(at('memory', 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    await writeFile(at('cpuacct', 'cpuacct.usage'), '203918274\n');
    await writeFile(at('pids', 'pids.current'), '3\n');
    await writeFile(at('pids', 'pids.peak'), '20\n');
    await writeFile(at('pids', 'pids.events'), 'max 17\n');
    await writeFile(
      at('blkio', 'blkio.throttle.io_service_bytes'),
      [
        '254:0 Read 4096', '254:0 Write 1048576', '254:0 Sync 1052672', '254:0 Async 0', '254:0 Discard 0', '254:0 Total 1052672',
        '7:0 Read 512', '7:0 Write 0', '7:0 Sync 0', '7:0 Async 512', '7:0 Discard 0', '7:0 Total 512',
        'Total 1053184', '',
      ].join('\n'),
    );
    expect(await run.readStats()).toEqual({
      memoryCurrentBytes: 1_470_464,
      memoryPeakBytes: 67_108_864,
      oomKills: 2,
      cpuUsageUs: 203_918,
      pidsCurrent: 3,
      pidsPeak: 20,
      pidsLimitHits: 17,
      ioReadBytes: 4608,
      ioWriteBytes: 1_048_576,
    });
  });

  it('reports no pids peak on kernels without pids.peak', async () => {
    const t = await fakeTree({ omit: ['pids.peak'] });
    const run = await new CgroupV1Driver({ mounts: t.mounts, ops: t.ops }).create('run-1', limits);
    expect((await run.readStats()).pidsPeak).toBeNull();
  });

  it('lists run groups under the parent in the memory hierarchy', async () => {
    const t = await fakeTree();
    const d = new CgroupV1Driver({ mounts: t.mounts, ops: t.ops });
    expect(await d.list()).toEqual([]);
    await d.create('run-b', limits);
    await d.create('run-a', limits);
    await writeFile(join(t.mounts.memory!, 'pawl', 'not-a-group'), '');
    expect(await d.list()).toEqual(['run-a', 'run-b']);
  });

  it('kills while frozen, only the PIDs in the group, then thaws and waits for it to empty', async () => {
    const t = await fakeTree();
    const d = new CgroupV1Driver({ mounts: t.mounts, ops: t.ops });
    const run = await d.create('run-1', limits);
    await writeFile(join(t.mounts.memory!, 'pawl/run-1/cgroup.procs'), '4242\n4243\n');
    await writeFile(join(t.mounts.pids!, 'pawl/run-1/cgroup.procs'), '4242\n4243\n');
    // A process stopped between joining the freezer and the memory group sits only in some.
    await writeFile(join(t.mounts.freezer!, 'pawl/run-1/cgroup.procs'), '4242\n4243\n4244\n');
    expect(await run.pids()).toEqual([4242, 4243, 4244]);
    await run.kill();
    expect(t.killed).toEqual([
      { pid: 4242, signal: 'SIGKILL', freezerState: 'FROZEN' },
      { pid: 4243, signal: 'SIGKILL', freezerState: 'FROZEN' },
      { pid: 4244, signal: 'SIGKILL', freezerState: 'FROZEN' },
    ]);
    expect(await read(join(t.mounts.freezer!, 'pawl/run-1/freezer.state'))).toBe('THAWED');
    expect(await run.pids()).toEqual([]);
  });

  it('with the run\'s namespace killed at once (firstKill), kills what is left without the freezer; without it, freezes', async () => {
    const t = await fakeTree();
    const run = await new CgroupV1Driver({ mounts: t.mounts, ops: t.ops }).create('run-1', limits);
    const freezer = join(t.mounts.freezer!, 'pawl/run-1/freezer.state');
    await writeFile(freezer, 'THAWED');
    await writeFile(join(t.mounts.memory!, 'pawl/run-1/cgroup.procs'), '4242\n');
    let firstKills = 0;
    await run.kill({ firstKill: () => ++firstKills > 0 });
    expect(firstKills).toBe(1);
    expect(t.killed).toEqual([{ pid: 4242, signal: 'SIGKILL', freezerState: 'THAWED' }]);
    // The namespace could not be killed (init not known yet, or gone): the freezer, as before.
    await writeFile(join(t.mounts.memory!, 'pawl/run-1/cgroup.procs'), '4243\n');
    await run.kill({ firstKill: () => false });
    expect(t.killed.at(-1)).toEqual({ pid: 4243, signal: 'SIGKILL', freezerState: 'FROZEN' });
  });

  it('the wait for an empty group kills a process missing from some hierarchies (a shim killed mid-join)', async () => {
    const t = await fakeTree();
    const run = await new CgroupV1Driver({ mounts: t.mounts, ops: t.ops }).create('run-1', limits);
    const files = (run as unknown as { procsFiles: string[] }).procsFiles;
    await writeFile(files[0]!, '4242\n');
    // In every list but the first, which the wait reads alone while it lists anything.
    for (const f of files.slice(1)) await writeFile(f, '4242\n4244\n');
    expect(await killUntilEmpty(files, t.ops, 1000)).toEqual([]);
    expect(t.killed.map((k) => k.pid)).toEqual([4242, 4244]);
    expect(await run.pids()).toEqual([]);
  });

  it('gives up with an error when processes never leave', async () => {
    const t = await fakeTree({ killWorks: false });
    const run = await new CgroupV1Driver({ mounts: t.mounts, ops: t.ops }).create('run-1', limits);
    await writeFile(join(t.mounts.memory!, 'pawl/run-1/cgroup.procs'), '4242\n');
    await expect(run.kill()).rejects.toThrow(/still has processes 4242/);
  });

  it('kill() of a group that is already gone is a no-op', async () => {
    const t = await fakeTree();
    await expect(new CgroupV1Driver({ mounts: t.mounts, ops: t.ops }).open('run-gone').kill()).resolves.toBeUndefined();
    expect(t.killed).toEqual([]);
  });

  it('removes every dir, retrying EBUSY, and is idempotent', async () => {
    const t = await fakeTree({ busyTimes: 3 });
    const d = new CgroupV1Driver({ mounts: t.mounts, ops: t.ops });
    const run = await d.create('run-1', limits);
    await run.remove();
    expect(t.busy).toHaveLength(3);
    for (const dir of run.dirs) expect(existsSync(dir)).toBe(false);
    await run.remove();
    expect(await d.list()).toEqual([]);
  });

  it('opens an existing run by name and refuses names or parents outside pawl\'s subtree', async () => {
    const t = await fakeTree();
    const d = new CgroupV1Driver({ mounts: t.mounts, ops: t.ops });
    await d.create('run-1', limits);
    expect(d.open('run-1').dirs).toContain(join(t.mounts.memory!, 'pawl/run-1'));
    expect(() => d.open('../process_api')).toThrow(/invalid cgroup name/);
    expect(() => d.open('')).toThrow(/invalid cgroup name/);
    expect(() => new CgroupV1Driver({ mounts: t.mounts, parent: 'process_api' })).toThrow(/invalid cgroup parent/);
    expect(() => new CgroupV1Driver({ mounts: t.mounts, parent: '../pawl' })).toThrow(/invalid cgroup parent/);
  });
});
