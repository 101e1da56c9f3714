// Storage on cgroup v2 (issue 9.3, 10.6): with the run directory on tmpfs, on an ext4 loop
// device and on overlay, default-trust runs succeed and io.max names the right devices (read
// back from the run's own group while it lives); /workspace is a filesystem of its own whose
// size the kernel enforces against fallocate --keep-size and files unlinked but held open.
// The guest (scripts/vm-test): / is overlay (9p lower, tmpfs upper), /tmp tmpfs, /var/lib/pawl
// ext4 on /dev/vda.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { copyFileSync } from 'node:fs';
import { CGROUP_ROOT, MiB, NOTHING_LEFT, REPO, leftovers, pawl, requireV2, testHost } from './lib.mjs';

const { Sandbox, resolvePolicy, explain } = pawl;
// The tools come from the disk: the guest's / is an overlay whose layers it cannot see (binds
// from there are reported as degraded, which is what the root-overlay case below checks).
const BIN = '/var/lib/pawl/vm-storage-bin';
const BINDS = [{ src: `${BIN}/busybox`, dst: '/bin/busybox' }, { src: `${BIN}/fallocate`, dst: '/bin/fallocate' }];
const sh = (script) => ['/bin/busybox', 'sh', '-c', script];
const sys = (name) => readFileSync(`/sys/class/block/${name}/dev`, 'utf8').trim();
const run = (cmd, ...args) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();

const vda = sys('vda');
const hosts = [];
let loopDev = null;

function host(name, runDir) {
  const h = testHost(`storage-${name}`, { runDir });
  hosts.push(h);
  return h;
}

/** Start a program, read its group's io.max and its workspace mount while it runs, then its result. */
async function observe(h, argv, policy = {}) {
  const sb = await Sandbox.start({
    policy: resolvePolicy({ overrides: { ...policy, resources: { cpuPercent: 100, ...policy.resources }, filesystem: { binds: BINDS } } }),
    host: h, mode: 'program', command: argv,
  });
  const ioMax = (await readFile(join(CGROUP_ROOT, h.cgroupParent, `run-${sb.id}`, 'io.max'), 'utf8')).trim().split('\n').filter(Boolean);
  const mount = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === join(h.runDir, sb.id, 'workspace')) ?? '';
  const image = join(h.runDir, sb.id, 'workspace.img');
  const ioStatFile = join(CGROUP_ROOT, h.cgroupParent, `run-${sb.id}`, 'io.stat');
  let imageBytes = 0;
  let ioStat = '';
  let done = false;
  const result = sb.result().finally(() => (done = true));
  while (!done) {
    try {
      imageBytes = Math.max(imageBytes, statSync(image).blocks * 512);
      ioStat = readFileSync(ioStatFile, 'utf8');
    } catch {
      /* not yet, or gone */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { r: await result, ioMax: ioMax.map((l) => l.split(' ')[0]).sort(), ioLines: ioMax, mount, imageBytes, ioStat };
}

before(async () => {
  await requireV2();
  mkdirSync(BIN, { recursive: true });
  copyFileSync('/usr/bin/busybox', `${BIN}/busybox`);
  copyFileSync('/usr/bin/fallocate', `${BIN}/fallocate`);
  execFileSync('chmod', ['755', `${BIN}/busybox`, `${BIN}/fallocate`]);
});

after(async () => {
  // The test's own mounts first: the leftover check compares the whole mount table with its start.
  for (const m of ['/var/lib/pawl/vm-storage-loop', '/var/lib/pawl/vm-storage-ovl/merged']) {
    try {
      run('umount', m);
    } catch {
      /* not mounted */
    }
  }
  for (const h of hosts) assert.deepEqual(await leftovers(h), NOTHING_LEFT);
});

describe('cgroup v2: disk rate limits follow the storage', () => {
  it('run dir on tmpfs: succeeds at the default trust level; only the rootfs disk is throttled, and the result says why', async (t) => {
    const h = host('tmpfs', '/tmp/pawl-vm-storage-runs');
    const { r, ioMax, ioLines, mount } = await observe(h, sh('echo ok > /workspace/f && cat /workspace/f'));
    t.diagnostic(`io.max ${JSON.stringify(ioLines)}; not_needed ${JSON.stringify(r.not_needed)}; degraded ${JSON.stringify(r.degraded)}`);
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    assert.equal(r.stdout, 'ok\n');
    assert.deepEqual(ioMax, [vda]); // the rootfs and the tools, under /var/lib/pawl
    assert.match(ioLines[0], new RegExp(`^${vda} rbps=${10 * MiB} wbps=${5 * MiB} `));
    assert.deepEqual(r.not_needed, ['io-limits: /tmp/pawl-vm-storage-runs: tmpfs (memory: its pages count against the run\'s memory limit)']);
    assert.deepEqual(r.degraded, []);
    assert.match(mount, / - ext4 \/dev\/loop\d+ /);
  });

  // On v1 the host names this gap in degraded (workspace-memory); on v2 the loop device writes the
  // image's pages for the run's group (cgroup writeback), so they count against its memory limit.
  it('run dir on tmpfs: /workspace\'s image pages count against the run\'s memory limit', async (t) => {
    const h = host('tmpfs-mem', '/tmp/pawl-vm-storage-runs-mem');
    const { r } = await observe(h, sh('busybox dd if=/dev/zero of=/workspace/f bs=1M count=120 conv=fsync 2>&1; sync'), { resources: { memory: '64MB', diskSpace: '200MB', diskWriteBps: '200MB', wallTime: '60s' } });
    t.diagnostic(`${r.status} ${r.error?.kind}/${r.error?.resource}: peak ${r.usage.peak_memory_bytes}; degraded ${JSON.stringify(r.degraded)}; ${r.stdout.trim().split('\n').at(-1)}`);
    assert.deepEqual(r.degraded, []);
    assert.equal(r.error?.kind, 'ResourceExhausted', JSON.stringify(r.error));
    assert.equal(r.error?.resource, 'memory');
  });

  it('run dir on an ext4 loop device: io.max names the loop device and the disk under its file', async (t) => {
    mkdirSync('/var/lib/pawl/vm-storage-loop', { recursive: true });
    run('truncate', '-s', '256M', '/var/lib/pawl/vm-storage-loop.img');
    run('mkfs.ext4', '-q', '-F', '/var/lib/pawl/vm-storage-loop.img');
    run('mount', '-o', 'loop', '/var/lib/pawl/vm-storage-loop.img', '/var/lib/pawl/vm-storage-loop');
    loopDev = run('findmnt', '-n', '-o', 'MAJ:MIN', '/var/lib/pawl/vm-storage-loop');
    const h = host('loop', '/var/lib/pawl/vm-storage-loop/runs');
    const { r, ioMax, ioLines, mount } = await observe(h, sh('true'));
    const workspaceLoop = mount.split(' ')[2];
    t.diagnostic(`run dir's loop ${loopDev}, /workspace's loop ${workspaceLoop}, vda ${vda}; io.max ${JSON.stringify(ioLines)}`);
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    assert.match(loopDev, /^7:\d+$/);
    assert.deepEqual(ioMax, [loopDev, vda, workspaceLoop].sort());
    assert.deepEqual(r.degraded, []);
    assert.deepEqual(r.not_needed.filter((n) => n.includes('vm-storage-loop')), []);
  });

  it('run dir on overlay with its upper layer on the disk: io.max names the disk; the 9p lower layer needs none', async (t) => {
    const base = '/var/lib/pawl/vm-storage-ovl';
    for (const d of ['upper', 'work', 'merged']) mkdirSync(join(base, d), { recursive: true });
    // The lower layer is the project's own 9p share (a directory mounted as such, not through /).
    run('mount', '-t', 'overlay', '-o', `lowerdir=${REPO}/test/fixtures,upperdir=${base}/upper,workdir=${base}/work`, 'overlay', `${base}/merged`);
    const h = host('overlay', `${base}/merged/runs`);
    const { r, ioMax, ioLines, mount } = await observe(h, sh('echo ok > /workspace/f'));
    t.diagnostic(`io.max ${JSON.stringify(ioLines)}; not_needed ${JSON.stringify(r.not_needed)}`);
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    assert.deepEqual(ioMax, [vda, mount.split(' ')[2]].sort()); // the disk, and /workspace's loop device (its image is on the upper layer)
    assert.deepEqual(r.not_needed, [`io-limits: ${REPO}/test/fixtures: 9p (the VM's host does the I/O, outside this kernel's block layer)`]);
    assert.deepEqual(r.degraded, []);
  });

  it('run dir on the guest\'s own overlay root, whose layers it cannot see: runs by default, degraded says so; requireIoDevice refuses', async (t) => {
    // Not under /root: it is 0700, and the sandbox's host id could not reach its workspace there.
    const h = host('root-overlay', '/var/cache/pawl-vm-storage-runs');
    const { r, ioMax } = await observe(h, sh('true'));
    t.diagnostic(`io.max ${JSON.stringify(ioMax)}; degraded ${JSON.stringify(r.degraded)}`);
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    assert.deepEqual(ioMax, [vda]); // the rootfs and tools still are on the disk
    assert.ok(r.degraded.length > 0 && r.degraded.every((d) => /^io-limits: .*not visible in this mount namespace/.test(d)), JSON.stringify(r.degraded));
    await assert.rejects(
      observe(h, sh('true'), { storage: { requireIoDevice: true } }),
      (e) => e.kind === 'HostUnsupported' && /cannot apply disk rate limits: .*storage\.requireIoDevice/.test(e.message),
    );
  });

  it('explain prints the devices and what needs none', async () => {
    const e = await explain(resolvePolicy({}), { host: testHost('storage-tmpfs', { runDir: '/tmp/pawl-vm-storage-runs' }) });
    assert.deepEqual(e.storage.ioDevices, [vda]);
    assert.ok(e.storage.notNeeded.some((n) => n.includes('/tmp/pawl-vm-storage-runs: tmpfs')));
    assert.ok(e.cgroup.writes.some((w) => w.path.endsWith('io.max') && w.value.startsWith(`${vda} `)));
  });
});

describe('cgroup v2: /workspace space is enforced by the kernel', () => {
  const policy = { resources: { diskSpace: '16MB', diskWriteBps: '200MB' } };

  it('fallocate --keep-size past the limit stops at it (ResourceExhausted/disk)', async (t) => {
    const h = host('ws', '/var/lib/pawl/vm-storage-ws');
    const { r, imageBytes } = await observe(h, sh(': > /workspace/big; /bin/fallocate -n -l 64MiB /workspace/big; s=$?; sleep 0.5; exit $s'), policy);
    t.diagnostic(`${r.error?.kind}/${r.error?.resource}; image ${imageBytes} B; ${r.stderr.trim()}`);
    assert.match(r.stderr, /No space left on device/);
    assert.equal(r.error?.kind, 'ResourceExhausted');
    assert.equal(r.error?.resource, 'disk');
    assert.ok(imageBytes <= 17 * MiB, `image ${imageBytes}`); // diskSpace plus ext4's own metadata
  });

  it('buffered writes to /workspace are charged to the run on its loop device, which io.max names', async (t) => {
    // The loop driver's own writes to the image file reach the disk as nobody's: the limit must
    // sit on the loop device (measured here: 24 MB on the loop device, none on vda).
    const h = host('ws', '/var/lib/pawl/vm-storage-ws');
    const { r, ioStat, ioMax, mount } = await observe(h, sh('busybox dd if=/dev/zero of=/workspace/f bs=1M count=24 conv=fsync && sleep 1'), {
      resources: { diskSpace: '64MB', diskWriteBps: '200MB' },
    });
    const loop = mount.split(' ')[2];
    t.diagnostic(`/workspace on ${loop}; io.max ${JSON.stringify(ioMax)}; io.stat: ${ioStat.trim().replace(/\n/g, ' | ')}`);
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    assert.deepEqual(ioMax, [vda, loop].sort());
    const line = ioStat.split('\n').find((l) => l.startsWith(`${loop} `)) ?? '';
    assert.ok(Number(/wbytes=(\d+)/.exec(line)?.[1] ?? 0) >= 24 * MiB, `io.stat for ${loop}: ${line}`);
  });

  it('files unlinked but held open stop at the limit (ResourceExhausted/disk)', async (t) => {
    const h = host('ws', '/var/lib/pawl/vm-storage-ws');
    const { r, imageBytes } = await observe(
      h,
      sh('cd /workspace; exec 3>a 4>b; rm a b; busybox dd if=/dev/zero bs=1M count=12 >&3 && busybox dd if=/dev/zero bs=1M count=12 >&4; s=$?; sleep 1; exit $s'),
      policy,
    );
    t.diagnostic(`${r.error?.kind}/${r.error?.resource}; workspace_bytes ${r.usage.workspace_bytes}; image ${imageBytes} B`);
    assert.match(r.stderr, /No space left on device/);
    assert.equal(r.error?.resource, 'disk');
    assert.ok(imageBytes <= 17 * MiB, `image ${imageBytes}`); // diskSpace plus ext4's own metadata
  });
});
