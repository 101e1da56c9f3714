// The v2 driver against a fake cgroup2 mount: directories a test creates, filled with the
// control files (and realistic contents) a 6.x kernel puts in a new cgroup.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostOps } from '../../src/cgroup/options.js';
import { parseCgroupMounts } from '../../src/cgroup/probe.js';
import type { CgroupLimits } from '../../src/cgroup/types.js';
import { CgroupV2Driver } from '../../src/cgroup/v2/manager.js';
import { PawlError } from '../../src/errors.js';

const MiB = 1024 ** 2;

const CONTROL_FILES: Record<string, string> = {
  'cgroup.procs': '',
  'cgroup.controllers': '',
  'cgroup.subtree_control': '',
  'cgroup.events': 'populated 0\nfrozen 0\n',
  'cgroup.freeze': '0\n',
  'cgroup.kill': '',
  'memory.max': 'max\n',
  'memory.swap.max': 'max\n',
  'memory.oom.group': '0\n',
  'memory.current': '0\n',
  'memory.peak': '0\n',
  'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n',
  'cpu.max': 'max 100000\n',
  'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n',
  'pids.max': 'max\n',
  'pids.current': '0\n',
  'pids.peak': '0\n',
  'pids.events': 'max 0\n',
  'io.max': '',
  'io.stat': '',
};

interface FakeOptions {
  /** The root's cgroup.controllers. */
  controllers?: string;
  /** The root's cgroup.subtree_control before pawl runs. */
  subtreeControl?: string;
  omit?: string[];
  swap?: boolean;
  busyTimes?: number;
}

interface FakeTree {
  root: string;
  ops: HostOps;
  killed: Array<{ pid: number; frozen: string }>;
  busy: string[];
}

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'pawl-cgroup-v2-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function fakeTree(o: FakeOptions = {}): Promise<FakeTree> {
  const root = await mkdtemp(join(tmp, 'sys-fs-cgroup-'));
  await writeFile(join(root, 'cgroup.controllers'), o.controllers ?? 'cpuset cpu io memory hugetlb pids rdma misc\n');
  await writeFile(join(root, 'cgroup.subtree_control'), o.subtreeControl ?? '');
  await writeFile(join(root, 'cgroup.procs'), '1\n');
  let busyLeft = o.busyTimes ?? 0;
  const tree: FakeTree = {
    root,
    killed: [],
    busy: [],
    ops: {
      mkdir: async (path) => {
        await mkdir(path);
        for (const [file, content] of Object.entries(CONTROL_FILES)) {
          if (!o.omit?.includes(file)) await writeFile(join(path, file), content);
        }
      },
      rmdir: async (path) => {
        if (!existsSync(path)) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
        if (busyLeft-- > 0) {
          tree.busy.push(path);
          throw Object.assign(new Error(`EBUSY: ${path}`), { code: 'EBUSY' });
        }
        await rm(path, { recursive: true });
      },
      kill: (pid) => {
        const dir = join(root, 'pawl', 'run-1');
        tree.killed.push({ pid, frozen: readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim() });
        const left = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter((l) => l !== '' && Number(l) !== pid);
        writeFileSync(join(dir, 'cgroup.procs'), left.map((l) => `${l}\n`).join(''));
      },
      swapActive: async () => o.swap ?? false,
    },
  };
  return tree;
}

const limits: CgroupLimits = {
  memoryBytes: 64 * MiB,
  noSwap: true,
  cpuQuotaUs: 20_000,
  cpuPeriodUs: 100_000,
  pidsMax: 120,
  io: { devices: ['254:0'], readBps: 10 * MiB, writeBps: 5 * MiB },
};
const noIo = { ...limits, io: null };

const read = (path: string) => readFile(path, 'utf8');

/** The PawlError a promise rejects with (fails the test if it resolves or throws something else). */
async function rejection(p: Promise<unknown>): Promise<PawlError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(PawlError);
  return e as PawlError;
}

describe('parseCgroupMounts (pure v2)', () => {
  it('finds the cgroup2 mount and no v1 hierarchies', () => {
    const mountinfo = [
      '22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
      '26 23 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot',
      '27 23 0:24 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:5 - bpf bpf rw,mode=700',
    ].join('\n');
    expect(parseCgroupMounts(mountinfo)).toEqual({ v1: {}, unified: '/sys/fs/cgroup' });
  });
});

describe('CgroupV2Driver', () => {
  it('plans the exact limit writes', async () => {
    const t = await fakeTree();
    const d = new CgroupV2Driver({ root: t.root, ops: t.ops });
    const dir = `${t.root}/pawl/run-1`;
    expect(d.plan('run-1', limits).map(({ path, value }) => ({ path, value }))).toEqual([
      { path: `${dir}/memory.max`, value: '67108864' },
      { path: `${dir}/memory.swap.max`, value: '0' },
      { path: `${dir}/memory.oom.group`, value: '1' },
      { path: `${dir}/cpu.max`, value: '20000 100000' },
      { path: `${dir}/pids.max`, value: '120' },
      { path: `${dir}/io.max`, value: '254:0 rbps=10485760 wbps=5242880' },
    ]);
  });

  it('enables the controllers in the root and the parent, then writes the limits', async () => {
    const t = await fakeTree();
    const d = new CgroupV2Driver({ root: t.root, ops: t.ops });
    const run = await d.create('run-1', limits);
    const dir = join(t.root, 'pawl', 'run-1');
    expect(run.version).toBe('v2');
    expect(run.dirs).toEqual([dir]);
    expect(run.procsFiles).toEqual([join(dir, 'cgroup.procs')]);
    expect(await read(join(t.root, 'cgroup.subtree_control'))).toBe('+memory +cpu +pids +io');
    expect(await read(join(t.root, 'pawl', 'cgroup.subtree_control'))).toBe('+memory +cpu +pids +io');
    expect(await read(join(dir, 'memory.max'))).toBe('67108864');
    expect(await read(join(dir, 'memory.swap.max'))).toBe('0');
    expect(await read(join(dir, 'memory.oom.group'))).toBe('1');
    expect(await read(join(dir, 'cpu.max'))).toBe('20000 100000');
    expect(await read(join(dir, 'pids.max'))).toBe('120');
    expect(await read(join(dir, 'io.max'))).toBe('254:0 rbps=10485760 wbps=5242880');
  });

  it('leaves io alone without io limits and writes only the controllers still missing', async () => {
    const t = await fakeTree({ subtreeControl: 'cpu memory\n' });
    const d = new CgroupV2Driver({ root: t.root, parent: 'workers/pawl', ops: t.ops });
    await d.create('run-1', noIo);
    expect(await read(join(t.root, 'cgroup.subtree_control'))).toBe('+pids');
    expect(await read(join(t.root, 'workers', 'cgroup.subtree_control'))).toBe('+memory +cpu +pids');
    expect(await read(join(t.root, 'workers', 'pawl', 'cgroup.subtree_control'))).toBe('+memory +cpu +pids');
    expect(await read(join(t.root, 'workers', 'pawl', 'run-1', 'io.max'))).toBe('');
    expect(await d.list()).toEqual(['run-1']);
  });

  it('does not touch a subtree_control that already has every controller', async () => {
    const t = await fakeTree({ subtreeControl: 'cpuset cpu io memory pids\n' });
    await new CgroupV2Driver({ root: t.root, ops: t.ops }).create('run-1', limits);
    expect(await read(join(t.root, 'cgroup.subtree_control'))).toBe('cpuset cpu io memory pids\n');
  });

  it('names a controller the root does not offer, and needs io only for io limits', async () => {
    const hybrid = await fakeTree({ controllers: 'hugetlb\n' });
    const err = await rejection(new CgroupV2Driver({ root: hybrid.root, ops: hybrid.ops }).create('run-1', noIo));
    expect(err.kind).toBe('HostUnsupported');
    expect(err.message).toMatch(/v2 "memory" controller is not available/);

    const noIoCtl = await fakeTree({ controllers: 'cpu memory pids\n' });
    const d = new CgroupV2Driver({ root: noIoCtl.root, ops: noIoCtl.ops });
    await expect(d.create('run-1', limits)).rejects.toThrow(/v2 "io" controller is not available.*disk I\/O limits/);
    await expect(d.create('run-2', noIo)).resolves.toBeDefined();
  });

  it('fails closed without memory.swap.max while swap is active, and removes the half-made group', async () => {
    const t = await fakeTree({ omit: ['memory.swap.max'], swap: true });
    const d = new CgroupV2Driver({ root: t.root, ops: t.ops });
    await expect(d.create('run-1', limits)).rejects.toThrow(/memory\.swap\.max does not exist: swap is active.*swap accounting/);
    expect(await d.list()).toEqual([]);

    const noSwap = await fakeTree({ omit: ['memory.swap.max'], swap: false });
    await expect(new CgroupV2Driver({ root: noSwap.root, ops: noSwap.ops }).create('run-1', limits)).resolves.toBeDefined();
  });

  it('requires memory.oom.group', async () => {
    const t = await fakeTree({ omit: ['memory.oom.group'] });
    const err = await rejection(new CgroupV2Driver({ root: t.root, ops: t.ops }).create('run-1', limits));
    expect(err.kind).toBe('HostUnsupported');
    expect(err.message).toMatch(/memory\.oom\.group does not exist.*cgroup memory controller/);
  });

  it('parses realistic stats files', async () => {
    const t = await fakeTree();
    const run = await new CgroupV2Driver({ root: t.root, ops: t.ops }).create('run-1', limits);
    const dir = run.dirs[0]!;
    await writeFile(join(dir, 'memory.current'), '1343488\n');
    await writeFile(join(dir, 'memory.peak'), '67108864\n');
    await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 0\noom 1\noom_kill 1\noom_group_kill 1\n');
    await writeFile(
      join(dir, 'cpu.stat'),
      'usage_usec 204719\nuser_usec 180001\nsystem_usec 24718\nnr_periods 12\nnr_throttled 9\nthrottled_usec 791234\nnr_bursts 0\nburst_usec 0\n',
    );
    await writeFile(join(dir, 'pids.current'), '4\n');
    await writeFile(join(dir, 'pids.peak'), '20\n');
    await writeFile(join(dir, 'pids.events'), 'max 3\n');
    await writeFile(
      join(dir, 'io.stat'),
      '254:0 rbytes=1056768 wbytes=4096 rios=30 wios=1 dbytes=0 dios=0\n7:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n',
    );
    expect(await run.readStats()).toEqual({
      memoryCurrentBytes: 1_343_488,
      memoryPeakBytes: 67_108_864,
      oomKills: 1,
      cpuUsageUs: 204_719,
      pidsCurrent: 4,
      pidsPeak: 20,
      pidsLimitHits: 3,
      ioReadBytes: 1_057_280,
      ioWriteBytes: 4096,
    });
  });

  it('falls back to current memory and no pids peak on kernels without memory.peak / pids.peak', async () => {
    const t = await fakeTree({ omit: ['memory.peak', 'pids.peak', 'io.stat'] });
    const run = await new CgroupV2Driver({ root: t.root, ops: t.ops }).create('run-1', noIo);
    await writeFile(join(run.dirs[0]!, 'memory.current'), '5000000\n');
    expect(await run.readStats()).toMatchObject({ memoryCurrentBytes: 5_000_000, memoryPeakBytes: 5_000_000, pidsPeak: null, ioReadBytes: 0 });
  });

  it('kills through cgroup.kill when the kernel has it', async () => {
    const t = await fakeTree();
    const run = await new CgroupV2Driver({ root: t.root, ops: t.ops }).create('run-1', limits);
    await run.kill();
    expect(await read(join(run.dirs[0]!, 'cgroup.kill'))).toBe('1');
    expect(t.killed).toEqual([]);
  });

  it('falls back to freeze + SIGKILL of the group\'s PIDs without cgroup.kill', async () => {
    const t = await fakeTree({ omit: ['cgroup.kill'] });
    const run = await new CgroupV2Driver({ root: t.root, ops: t.ops }).create('run-1', limits);
    const dir = run.dirs[0]!;
    await writeFile(join(dir, 'cgroup.procs'), '4242\n4243\n');
    await writeFile(join(dir, 'cgroup.events'), 'populated 1\nfrozen 1\n');
    expect(await run.pids()).toEqual([4242, 4243]);
    await run.kill();
    expect(t.killed).toEqual([{ pid: 4242, frozen: '1' }, { pid: 4243, frozen: '1' }]);
    expect(await read(join(dir, 'cgroup.freeze'))).toBe('0');
    expect(await run.pids()).toEqual([]);
  });

  it('removes the run dir, retrying EBUSY, and is idempotent', async () => {
    const t = await fakeTree({ busyTimes: 2 });
    const d = new CgroupV2Driver({ root: t.root, ops: t.ops });
    const run = await d.create('run-1', limits);
    await run.remove();
    expect(t.busy).toHaveLength(2);
    expect(existsSync(run.dirs[0]!)).toBe(false);
    await run.remove();
    expect(await d.list()).toEqual([]);
  });

  it('refuses names and parents outside pawl\'s subtree', async () => {
    const t = await fakeTree();
    const d = new CgroupV2Driver({ root: t.root, ops: t.ops });
    expect(() => d.open('a/b')).toThrow(/invalid cgroup name/);
    expect(() => new CgroupV2Driver({ root: t.root, parent: 'system.slice' })).toThrow(/invalid cgroup parent/);
  });
});
