// The io device resolution over fixture trees: a fake /sys with the same links the kernel makes
// (dev/block/MAJ:MIN -> devices/.../block/<disk>[/<partition>], slaves/, loop/backing_file,
// fs/btrfs/<fsid>/devices) and a mountinfo text, one storage kind per mount.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountOf, overlayLayers, parseMounts, resolveIoDevices, type StorageSnapshot } from '../../src/cgroup/io-devices.js';

let sys: string;
let snap: StorageSnapshot;

const MOUNTINFO = [
  '21 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw',
  '22 21 0:30 / /run rw,nosuid - tmpfs tmpfs rw,size=100m',
  '23 21 253:0 / /data rw - ext4 /dev/mapper/vg-data rw',
  '24 21 9:0 / /raid rw - xfs /dev/md0 rw',
  '25 21 7:3 / /loopfs rw - ext4 /dev/loop3 rw',
  '26 21 7:4 / /memloop rw - ext4 /dev/loop4 rw',
  '27 21 0:40 / /ov rw - overlay overlay rw,lowerdir=/data/lower:/run/lower2,upperdir=/raid/upper,workdir=/raid/work',
  '28 21 0:41 / /ovmem rw - overlay overlay rw,lowerdir=/run/l,upperdir=/run/u,workdir=/run/w',
  '29 21 0:42 / /tank rw - zfs tank/data rw,xattr',
  '30 21 0:43 / /nfs rw - nfs4 server:/export rw,vers=4.2',
  '31 21 0:44 / /b1 rw - btrfs /dev/sdd rw,subvolid=5',
  '32 21 0:45 / /b2 rw - btrfs /dev/sde rw,subvolid=5',
  '33 21 0:46 / /host rw - 9p hostroot rw,trans=virtio',
  '34 21 0:47 / /vfs rw - virtiofs share rw',
  '35 21 8:99 / /with\\040space rw - ext4 /dev/sdz rw',
  '36 21 254:1 /srv /data/srv rw - ext4 /dev/vda1 rw',
  '37 21 0:49 / /fuse rw - fuse.sshfs host:/x rw',
  '38 22 0:50 / /run/stacked rw - tmpfs tmpfs rw',
  '39 38 254:1 / /run/stacked rw - ext4 /dev/vda1 rw',
].join('\n');

/** A block device dir with its dev number (and partition marker), linked from dev/block. */
function blockDev(path: string, majMin: string, partition = false): void {
  const dir = join(sys, 'devices/virtual/block', path);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'dev'), `${majMin}\n`);
  if (partition) writeFileSync(join(dir, 'partition'), '1\n');
  mkdirSync(join(sys, 'dev/block'), { recursive: true });
  symlinkSync(join('../../devices/virtual/block', path), join(sys, 'dev/block', majMin));
}

function slave(disk: string, target: string): void {
  mkdirSync(join(sys, 'devices/virtual/block', disk, 'slaves'), { recursive: true });
  symlinkSync(join('../..', target), join(sys, 'devices/virtual/block', disk, 'slaves', target.split('/').pop()!));
}

function file(path: string, text: string): void {
  mkdirSync(dirname(join(sys, path)), { recursive: true });
  writeFileSync(join(sys, path), text);
}

beforeAll(() => {
  sys = mkdtempSync(join(tmpdir(), 'pawl-fake-sys-'));
  blockDev('vda', '254:0');
  blockDev('vda/vda1', '254:1', true);
  blockDev('vda/vda2', '254:2', true);
  blockDev('dm-0', '253:0');
  slave('dm-0', 'vda/vda2');
  blockDev('sdb', '8:16');
  blockDev('sdc', '8:32');
  blockDev('md0', '9:0');
  slave('md0', 'sdb');
  slave('md0', 'sdc');
  blockDev('loop3', '7:3');
  file('devices/virtual/block/loop3/loop/backing_file', '/data/images/fs.img (deleted)\n');
  blockDev('loop4', '7:4');
  file('devices/virtual/block/loop4/loop/backing_file', '/run/fs.img\n');
  blockDev('sdd', '8:48');
  blockDev('sde', '8:64');
  blockDev('sdf', '8:80');
  file('fs/btrfs/1111-aaaa/devices/sdd/dev', '8:48\n');
  file('fs/btrfs/2222-bbbb/devices/sde/dev', '8:64\n');
  file('fs/btrfs/2222-bbbb/devices/sdf/dev', '8:80\n');
  snap = { mountinfo: MOUNTINFO, sys };
});

afterAll(() => rmSync(sys, { recursive: true, force: true }));

const resolve = (...paths: string[]) => resolveIoDevices(snap, paths);

describe('io devices: a block device, through partitions and stacking', () => {
  it('maps a path on a partition to its whole disk (the kernel refuses partitions in io.max)', () => {
    expect(resolve('/var/lib/pawl/runs')).toEqual({ devices: ['254:0'], notNeeded: [], noDevice: [], byPath: { '/var/lib/pawl/runs': ['254:0'] } });
  });

  it('follows device-mapper to the disk under it (slaves), keeping the dm device itself', () => {
    expect(resolve('/data/x').devices).toEqual(['253:0', '254:0']);
  });

  it('follows md to every member disk', () => {
    expect(resolve('/raid/x').devices).toEqual(['9:0', '8:16', '8:32']);
  });

  it('names each path\'s own devices, a disk two paths share under both (how /workspace\'s loop device is placed: prepare.ts)', () => {
    expect(resolve('/var/lib/pawl/runs', '/run/pawl', '/var/lib/pawl/rootfs', '/data/x').byPath).toEqual({
      '/var/lib/pawl/runs': ['254:0'],
      '/run/pawl': [],
      '/var/lib/pawl/rootfs': ['254:0'],
      '/data/x': ['253:0', '254:0'],
    });
  });

  it('follows a loop device to the storage of its backing file (even one unlinked since)', () => {
    expect(resolve('/loopfs/x').devices.sort()).toEqual(['253:0', '254:0', '7:3']);
  });

  it('does not throttle a loop device whose backing file is in memory', () => {
    const r = resolve('/memloop/x');
    expect(r.devices).toEqual([]);
    expect(r.notNeeded).toEqual([expect.stringMatching(/^\/run\/fs\.img: tmpfs \(memory/)]);
  });

  it('takes the mount stacked last on a mount point, and bind mounts of a subtree', () => {
    expect(resolve('/run/stacked/x').devices).toEqual(['254:0']);
    expect(resolve('/data/srv/y').devices).toEqual(['254:0']);
  });

  it('deduplicates devices over several paths', () => {
    expect(resolve('/', '/var/lib/pawl', '/data/srv').devices).toEqual(['254:0']);
  });
});

describe('io devices: overlay', () => {
  it('throttles every layer that has a device and says which need none', () => {
    const r = resolve('/ov/workspace');
    expect(r.devices.sort()).toEqual(['253:0', '254:0', '8:16', '8:32', '9:0']);
    expect(r.notNeeded).toEqual([expect.stringMatching(/^\/run\/lower2: tmpfs/)]);
    expect(r.noDevice).toEqual([]);
  });

  it('needs nothing when every layer is memory (a container root on tmpfs)', () => {
    const r = resolve('/ovmem/x');
    expect(r.devices).toEqual([]);
    expect(r.notNeeded).toHaveLength(2);
    expect(r.noDevice).toEqual([]);
  });

  it('says so when the layers are not visible here (a container\'s root overlay names host paths)', () => {
    // Inside a container, / is an overlay whose layers are host paths: they resolve back to it.
    const container = [
      '100 90 0:51 / / rw - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/var/lib/docker/overlay2/x/work',
      '101 100 0:52 / /proc rw - proc proc rw',
      '102 100 0:53 / /dev/shm rw - tmpfs shm rw',
    ].join('\n');
    const r = resolveIoDevices({ mountinfo: container, sys }, ['/var/lib/pawl/runs']);
    expect(r.devices).toEqual([]);
    expect(r.noDevice.join('\n')).toMatch(/not visible in this mount namespace/);
  });

  it('parses lowerdir lists with escaped colons and the 6.5+ lowerdir+= form', () => {
    expect(overlayLayers('rw,lowerdir=/a\\:b:/c,upperdir=/u,workdir=/w')).toEqual(['/a:b', '/c', '/u']);
    expect(overlayLayers('rw,lowerdir+=/l1,lowerdir+=/l2,datadir+=/d,upperdir=/u\\054x')).toEqual(['/l1', '/l2', '/d', '/u,x']);
  });
});

describe('io devices: nothing to throttle, and no single device', () => {
  it.each([
    ['/run/pawl', /tmpfs \(memory: its pages count against the run's memory limit\)/],
    ['/host/x', /9p \(the VM's host does the I\/O/],
    ['/vfs/x', /virtiofs \(the VM's host does the I\/O/],
  ])('%s needs no limit', (path, why) => {
    const r = resolve(path);
    expect(r).toEqual({ devices: [], notNeeded: [expect.stringMatching(why)], noDevice: [], byPath: { [path]: [] } });
  });

  it.each([
    ['/tank/x', /zfs from tank\/data \(no single block device\)/],
    ['/nfs/x', /nfs4 from server:\/export \(no single block device\)/],
    ['/fuse/x', /fuse\.sshfs/],
    ['/b2/x', /btrfs over 2 devices \(sde, sdf\)/],
  ])('%s has no single device: a degradation, not a silent gap', (path, why) => {
    const r = resolve(path);
    expect(r.devices).toEqual([]);
    expect(r.noDevice).toEqual([expect.stringMatching(why)]);
  });

  it('throttles a single-device btrfs on its device', () => {
    expect(resolve('/b1/x')).toEqual({ devices: ['8:48'], notNeeded: [], noDevice: [], byPath: { '/b1/x': ['8:48'] } });
  });

  it('reports a device sysfs does not list rather than guessing', () => {
    expect(resolve('/with space/x').noDevice).toEqual(['/with space/x: ext4 on device 8:99, which /sys/dev/block does not list']);
  });
});

describe('mountinfo parsing', () => {
  it('unescapes mount points and picks the longest, latest match', () => {
    const mounts = parseMounts(MOUNTINFO);
    expect(mountOf(mounts, '/with space/a')?.majMin).toBe('8:99');
    expect(mountOf(mounts, '/runx')?.mountPoint).toBe('/');
    expect(mountOf(mounts, '/run/stacked')?.fstype).toBe('ext4');
  });
});
