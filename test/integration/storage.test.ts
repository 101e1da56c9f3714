// Storage on the real host: disk rate limits follow the device really used (a disk here, none
// for a run dir on tmpfs), and /workspace is a filesystem of its own whose size and inode count
// the kernel enforces, for bwrap and runc alike. Every attack runs inside a sandbox.
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostConfig, type HostConfig } from '../../src/config/host.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import type { PolicyInput } from '../../src/config/policy.js';
import { probeCgroups } from '../../src/cgroup/probe.js';
import { execProgram, Sandbox } from '../../src/index.js';
import type { RunResult } from '../../src/supervisor/result.js';
import { leftovers, testHost } from '../helpers/host.js';
import { loadLibc } from '../../src/util/libc.js';
import { ensureRootfs } from '../../src/rootfs/index.js';

const MiB = 1024 * 1024;
const host = testHost('storage');
const BUSYBOX = { src: '/usr/bin/busybox', dst: '/bin/busybox' };
const FALLOCATE = { src: '/usr/bin/fallocate', dst: '/bin/fallocate' };
const tools = (policy: PolicyInput = {}): PolicyInput => ({ ...policy, filesystem: { binds: [BUSYBOX, FALLOCATE] } });

/** The whole disk under a path, found without pawl's resolver: findmnt, then sysfs's partition link. */
function diskOf(path: string): string {
  const majMin = execFileSync('findmnt', ['-n', '-o', 'MAJ:MIN', '-T', path], { encoding: 'utf8' }).trim();
  const sys = `/sys/dev/block/${majMin}`;
  return existsSync(`${sys}/partition`) ? readFileSync(`${sys}/../dev`, 'utf8').trim() : majMin;
}

/**
 * Start a program, and while it runs read the run's blkio throttle files and how many bytes its
 * workspace image takes on the host's disk (the most it ever took). Then its result.
 */
async function observe(argv: string[], policy: PolicyInput, h: HostConfig = host, binds = true): Promise<{ r: RunResult; throttled: string[]; imageBytes: number; mounted: string }> {
  const { mounts } = await probeCgroups();
  const sb = await Sandbox.start({ policy: resolvePolicy({ overrides: binds ? tools(policy) : policy }), host: h, mode: 'program', command: argv });
  const image = join(h.runDir, sb.id, 'workspace.img');
  const blkio = join(mounts.blkio!, h.cgroupParent, `run-${sb.id}`, 'blkio.throttle.write_bps_device');
  const throttled = (await readFile(blkio, 'utf8')).trim().split('\n').filter(Boolean);
  const mounted = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === join(h.runDir, sb.id, 'workspace')) ?? '';
  let imageBytes = 0;
  let done = false;
  const result = sb.result().finally(() => (done = true));
  while (!done) {
    try {
      imageBytes = Math.max(imageBytes, statSync(image).blocks * 512);
    } catch {
      /* not there yet, or already removed */
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { r: await result, throttled, imageBytes, mounted };
}

const sh = (script: string) => ['/bin/busybox', 'sh', '-c', script];

afterAll(async () => {
  expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
});

describe('disk rate limits follow the storage', () => {
  it('run dir on a real disk: blkio throttles name that whole disk and /workspace\'s loop device, nothing is degraded', async () => {
    const disk = diskOf('/var/lib/pawl');
    const { r, throttled, mounted } = await observe(sh('true'), {});
    expect(r.status).toBe('succeeded');
    // /workspace was its own ext4 filesystem on a loop device while the run lived.
    expect(mounted).toMatch(/ - ext4 \/dev\/loop\d+ /);
    // Scratch: no write barriers (a flush would only fsync an image deleted moments later).
    expect(mounted.split(' - ')[1]).toMatch(/\bnobarrier\b/);
    const loop = mounted.split(' ')[2];
    expect(throttled.sort()).toEqual([`${disk} ${5 * MiB}`, `${loop} ${5 * MiB}`].sort());
    expect(r.degraded).toEqual([]);
    expect(r.not_needed).toEqual([]);
  });

  describe('run dir on tmpfs', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync('/tmp/pawl-storage-tmpfs-');
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512m,mode=0755', 'tmpfs', dir]);
    });
    afterAll(() => {
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true });
    });

    it('runs at the default trust level, and says why the run dir needs no disk limit', async () => {
      const h = hostConfig({ cgroupParent: host.cgroupParent, runDir: join(dir, 'runs') });
      const { r, throttled } = await observe(sh('echo data > /workspace/f && cat /workspace/f'), {}, h);
      expect(r.status).toBe('succeeded');
      expect(r.stdout).toBe('data\n');
      expect(r.not_needed).toEqual([expect.stringMatching(new RegExp(`^io-limits: ${dir}/runs: tmpfs \\(memory`))]);
      // But /workspace's image there is memory its limit does not count: said so.
      expect(r.degraded).toEqual([`workspace-memory: ${dir}/runs is in memory (tmpfs): /workspace's image (up to resources.diskSpace, ${100 * MiB} bytes) is host memory the run's memory limit does not count; a run dir on a disk makes it disk`]);
      // Only the rootfs (on the disk) is left to throttle.
      expect(throttled).toEqual([`${diskOf('/var/lib/pawl')} ${5 * MiB}`]);
      const left = await leftovers(h); // the test's own tmpfs is not a leftover
      expect({ scratch: left.scratch, mounts: left.mounts.filter((m) => !m.startsWith(`+ ${dir} tmpfs`)) }).toEqual({ scratch: [], mounts: [] });
    });

    it('with the whole state dir (rootfs too) on tmpfs nothing is throttled, and explain says why', async () => {
      const h = hostConfig({ cgroupParent: host.cgroupParent, stateDir: join(dir, 'state'), runDir: join(dir, 'state', 'runs') });
      mkdirSync(h.stateDir, { recursive: true });
      // No binds either: busybox would be read from the disk, which is then rightly throttled.
      const { r, throttled } = await observe(['/usr/bin/node', '-e', '0'], {}, h, false);
      expect(r.status).toBe('succeeded');
      expect(r.not_needed).toHaveLength(2);
      expect(throttled).toEqual([]);
      const out = execFileSync(process.execPath, ['dist/cli/main.js', 'explain'], { env: { ...process.env, PAWL_STATE_DIR: h.stateDir }, encoding: 'utf8' });
      expect(out).toContain('io limits on no device');
      expect(out).toMatch(/not needed: io-limits: .*\/state\/runs: tmpfs \(memory/);
      expect(out).not.toMatch(/blkio\.throttle/);
    }, 60_000);
  });
});

describe('the rootfs is read by the supervisor, never under a run\'s disk rate', () => {
  it('a rootfs evicted from the page cache is read back before the run starts, not by node under the 10 MB/s read limit', async () => {
    // A state dir of its own, on the disk: no other test's sandbox maps its rootfs, so the
    // eviction below drops every page of it (as a reboot or memory pressure would).
    mkdirSync('/var/lib/pawl', { recursive: true });
    const stateDir = mkdtempSync('/var/lib/pawl/test-rootfs-evict-');
    chmodSync(stateDir, 0o755); // as pawl makes its state dir: the sandbox's user reads the rootfs below it
    const h = hostConfig({ cgroupParent: host.cgroupParent, stateDir, runDir: join(stateDir, 'runs') });
    const node = ['/usr/bin/node', '-e', '0'];
    try {
      const built = await execProgram(node, { host: h, trustLevel: 'limited' }); // builds it
      expect(built.status, JSON.stringify(built.error)).toBe('succeeded');
      const { path } = await ensureRootfs(h);
      const evict = (dir: string): void => {
        for (const e of readdirSync(dir, { withFileTypes: true })) {
          if (e.isDirectory()) evict(join(dir, e.name));
          else if (e.isFile() && statSync(join(dir, e.name)).mode & 0o444) {
            const fd = openSync(join(dir, e.name), 'r');
            loadLibc().posix_fadvise(fd, 0n, 0n, 4); // POSIX_FADV_DONTNEED
            closeSync(fd);
          }
        }
      };
      evict(path);
      const r = await execProgram(node, { host: h, trustLevel: 'limited' }); // 5 s wall, 10 MB/s read
      expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
      // node alone is ~100 MB; read by the sandbox at 10 MB/s, it was a Timeout.
      expect(r.usage.disk_read_bytes).toBeLessThan(8 * MiB);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('a killed run is not kept alive by its own limits', () => {
  // A direct write queues its whole buffer behind the write throttle (30 MB at 1 MB/s: ~30 s in
  // D state, past the kill's grace); the kill lifts the throttles, so the process dies at once.
  it('a direct write queued behind the disk throttle ends with the run: no cleanup error, nothing left', async () => {
    const r = await execProgram(['/bin/busybox', 'dd', 'if=/dev/zero', 'of=/workspace/f', 'bs=30M', 'count=1', 'oflag=direct'], {
      host, policy: tools({ resources: { memory: '128MB', diskSpace: '64MB', diskWriteBps: '1MB', wallTime: '1s' } }),
    });
    expect(r.error).toMatchObject({ kind: 'Timeout', limit: 'wall' });
    expect(r.cleanup_error).toBeUndefined();
    expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
  }, 60_000);
});

describe('/workspace space is enforced by the kernel', () => {
  // Each file stays under RLIMIT_FSIZE (= diskSpace), so only the filesystem's size can stop them.
  const policy = { resources: { diskSpace: '16MB', diskWriteBps: '200MB' } };

  it.each(['bwrap', 'runc'] as const)('%s: fallocate --keep-size past the limit stops at it (ResourceExhausted/disk)', async (runtime) => {
    const { r, imageBytes } = await observe(sh(': > /workspace/big; /bin/fallocate -n -l 64MiB /workspace/big; s=$?; sleep 0.3; exit $s'), { ...policy, runtime });
    expect(r.stderr).toMatch(/No space left on device/);
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'disk', limit_value: 16 * MiB });
    // The blocks were taken inside the image (only its bitmaps and extents reach the host's disk).
    expect(imageBytes).toBeLessThanOrEqual(17 * MiB); // diskSpace, plus what ext4 keeps of its own (the image is sized so the task gets all of diskSpace)
  });

  it('files unlinked but held open stop at the limit, and the held-full filesystem decides the verdict', async () => {
    const { r, imageBytes } = await observe(
      sh('cd /workspace; exec 3>a 4>b; rm a b; busybox dd if=/dev/zero bs=1M count=12 >&3 && busybox dd if=/dev/zero bs=1M count=12 >&4; s=$?; sleep 0.5; exit $s'),
      policy,
    );
    expect(r.stderr).toMatch(/No space left on device/);
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'disk' });
    // The usage is the filesystem's own count (statfs), which sees unlinked files: never past the limit.
    expect(r.usage.workspace_bytes).toBeLessThanOrEqual(16 * MiB + 256 * 1024);
    expect(imageBytes).toBeLessThanOrEqual(17 * MiB); // diskSpace, plus what ext4 keeps of its own (the image is sized so the task gets all of diskSpace)
  });

  it('usage is read from the filesystem, no walk or du: a file unlinked but held open is counted', async () => {
    // No walk can see this file (it has no name); only the filesystem's own counters can. The
    // watch looks every fifth poll (~0.5 s): 2 s gives it several looks while the file is held.
    const { r } = await observe(sh('cd /workspace; exec 3>a; rm a; busybox dd if=/dev/zero bs=1M count=3 >&3 2>/dev/null; sleep 2'), policy);
    expect(r.status).toBe('succeeded');
    expect(r.usage.workspace_bytes).toBeGreaterThanOrEqual(3 * MiB);
    expect(r.usage.workspace_bytes).toBeLessThan(4 * MiB);
  });

  it('write-and-delete faster than any sample cannot hold more than the limit at once', async () => {
    const { r, imageBytes } = await observe(
      sh('cd /workspace; busybox dd if=/dev/zero of=a bs=1M count=12 2>/dev/null; busybox dd if=/dev/zero of=b bs=1M count=12; s=$?; rm -f a b; exit $s'),
      policy,
    );
    expect(r.stderr).toMatch(/No space left on device/);
    expect(r.exit_code).toBe(1);
    expect(imageBytes).toBeLessThanOrEqual(17 * MiB); // diskSpace, plus what ext4 keeps of its own (the image is sized so the task gets all of diskSpace)
  });

  it('inodes are limited: creating files stops at diskInodes (ResourceExhausted/disk)', async () => {
    const { r } = await observe(sh('cd /workspace; i=0; while [ $i -lt 1000 ]; do : > f$i || exit 1; i=$((i+1)); done'), {
      resources: { diskInodes: 64 },
    });
    expect(r.stderr).toMatch(/No space left on device/);
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'disk' });
  });

  it('a workspace filled and cleaned up by a program that coped is not a failure', async () => {
    const r = await execProgram(sh('cd /workspace; busybox dd if=/dev/zero of=a bs=1M count=20 2>/dev/null; rm a; echo coped'), { host, policy: tools(policy) });
    expect(r.status).toBe('succeeded');
    expect(r.stdout).toBe('coped\n');
  });
});
