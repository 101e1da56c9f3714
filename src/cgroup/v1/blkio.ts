// v1 blkio throttling (Documentation/admin-guide/cgroup-v1/blkio-controller.rst).
import { join } from 'node:path';
import { readText, type PlannedWrite } from '../files.js';
import type { CgroupStats, IoLimit } from '../types.js';

export function blkioWrites(dir: string, io: IoLimit): PlannedWrite[] {
  return io.devices.flatMap((device) => [
    { path: join(dir, 'blkio.throttle.read_bps_device'), value: `${device} ${io.readBps}` },
    { path: join(dir, 'blkio.throttle.write_bps_device'), value: `${device} ${io.writeBps}` },
  ]);
}

/** Sums the per-device "MAJ:MIN Read N" / "MAJ:MIN Write N" lines; "Total" lines would count twice. */
export async function blkioStats(dir: string): Promise<Pick<CgroupStats, 'ioReadBytes' | 'ioWriteBytes'>> {
  let ioReadBytes = 0;
  let ioWriteBytes = 0;
  for (const line of (await readText(join(dir, 'blkio.throttle.io_service_bytes'))).split('\n')) {
    const [device, op, bytes] = line.trim().split(/\s+/);
    if (!device || bytes === undefined) continue;
    if (op === 'Read') ioReadBytes += Number(bytes);
    else if (op === 'Write') ioWriteBytes += Number(bytes);
  }
  return { ioReadBytes, ioWriteBytes };
}
