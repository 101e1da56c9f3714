// Loop-mount an image and unmount it with the system calls themselves (through koffi, as the
// seccomp layer calls libseccomp): `mount -o loop` and `umount` as processes cost two execs per
// run, which is most of /workspace's set-up time on a busy machine.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { PawlError } from '../errors.js';
import { lastErrno, loadLibc } from '../util/libc.js';

// <linux/loop.h>, <sys/mount.h>
const LOOP_CTL_GET_FREE = 0x4c82;
const LOOP_CONFIGURE = 0x4c0a;
const LO_FLAGS_AUTOCLEAR = 4;
const MS_NOSUID = 2;
const MS_NODEV = 4;
const MS_NOEXEC = 8;
const MS_NOATIME = 1024;
/** struct loop_config: fd, block_size, struct loop_info64 (232 bytes), __u64 __reserved[8]. */
const LOOP_CONFIG_SIZE = 4 + 4 + 232 + 64;
const LO_FLAGS_OFFSET = 8 + 5 * 8 + 3 * 4; // config header, then loop_info64's five u64 and three u32
const EBUSY = 16;

const fail = (what: string) => new PawlError('RuntimeError', `${what}: errno ${lastErrno()}`);

/**
 * Attach `image` to a free loop device with autoclear (it detaches itself at the last unmount)
 * and mount its ext4 on `target`, nosuid, nodev, noatime. A scratch image (a run's /workspace,
 * removed after its unmount) is mounted without write barriers: a flush there only makes the loop
 * device fsync an image that is deleted moments later, through the host filesystem's journal
 * (measured: a run's unmount 3.7 -> 1.1 ms, its teardown ~1.5 ms shorter). A volume keeps them.
 * Returns the loop device's "MAJ:MIN".
 */
export async function loopMount(image: string, target: string, opts: { scratch: boolean; noexec?: boolean }): Promise<string> {
  const c = loadLibc();
  const control = openSync('/dev/loop-control', 'r+');
  const file = openSync(image, 'r+');
  try {
    for (let attempt = 0; ; attempt++) {
      const n = c.ioctl(control, LOOP_CTL_GET_FREE, null);
      if (n < 0) throw fail('no free loop device (LOOP_CTL_GET_FREE)');
      const dev = `/dev/loop${n}`;
      const loop = openSync(dev, 'r+');
      try {
        const config = Buffer.alloc(LOOP_CONFIG_SIZE);
        config.writeUInt32LE(file, 0);
        config.writeUInt32LE(LO_FLAGS_AUTOCLEAR, LO_FLAGS_OFFSET);
        if (c.ioctl(loop, LOOP_CONFIGURE, config) < 0) {
          // Another process took the same free device between the two calls: ask again.
          if (lastErrno() === EBUSY && attempt < 10) continue;
          throw fail(`cannot attach ${image} to ${dev} (LOOP_CONFIGURE)`);
        }
        // Mounted before our fd on the device closes: autoclear would detach an unused device.
        // noinit_itable: no kernel thread zeroing inode tables in the background, outside the run's cgroup.
        // On a libuv thread (it reads through the loop device); a failure is asked again here for its errno.
        const flags = MS_NOSUID | MS_NODEV | MS_NOATIME | (opts.noexec ? MS_NOEXEC : 0);
        const data = opts.scratch ? 'noinit_itable,nobarrier' : 'noinit_itable';
        if ((await c.mountAsync(dev, target, 'ext4', flags, data)) < 0 && c.mount(dev, target, 'ext4', flags, data) < 0) {
          throw fail(`cannot mount ${dev} on ${target}`);
        }
        return readFileSync(`/sys/block/loop${n}/dev`, 'utf8').trim();
      } finally {
        closeSync(loop);
      }
    }
  } finally {
    closeSync(file);
    closeSync(control);
  }
}

/** umount2(target, flags): 0 or the errno. MNT_DETACH = 2. */
export function unmount(target: string, lazy = false): number {
  return loadLibc().umount2(target, lazy ? 2 : 0) < 0 ? lastErrno() : 0;
}

/**
 * unmount() on a libuv thread: a successful unmount (the write-back, the loop device's detach)
 * never stops the event loop. A failure (not mounted, busy: quick) is asked again here for its errno.
 */
export async function unmountAsync(target: string, lazy = false): Promise<number> {
  return (await loadLibc().umount2Async(target, lazy ? 2 : 0)) === 0 ? 0 : unmount(target, lazy);
}

const [SEEK_DATA, SEEK_HOLE] = [3, 4];

/** The [offset, length] ranges of a sparse file that hold data (lseek SEEK_DATA/SEEK_HOLE). */
export function dataRanges(fd: number, size: number): [number, number][] {
  const c = loadLibc();
  const out: [number, number][] = [];
  for (let at = 0n; at < BigInt(size); ) {
    const data = c.lseek(fd, at, SEEK_DATA);
    if (data < 0n) break; // ENXIO: no data past this point
    const hole = c.lseek(fd, data, SEEK_HOLE);
    out.push([Number(data), Number(hole - data)]);
    at = hole;
  }
  return out;
}
