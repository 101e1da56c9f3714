// v2 io controller (Documentation/admin-guide/cgroup-v2.rst "IO").
import { join } from 'node:path';
import { readOptional, type PlannedWrite } from '../files.js';
import type { CgroupStats, IoLimit } from '../types.js';

export function ioWrites(dir: string, io: IoLimit): PlannedWrite[] {
  return io.devices.map((device) => ({ path: join(dir, 'io.max'), value: `${device} rbps=${io.readBps} wbps=${io.writeBps}` }));
}

/** Sums rbytes/wbytes over the "MAJ:MIN rbytes=N wbytes=N rios=N ..." lines of io.stat. */
export async function ioStats(dir: string): Promise<Pick<CgroupStats, 'ioReadBytes' | 'ioWriteBytes'>> {
  let ioReadBytes = 0;
  let ioWriteBytes = 0;
  // io.stat is there only while the io controller is enabled for the group, i.e. for runs with io limits.
  for (const line of ((await readOptional(join(dir, 'io.stat'))) ?? '').split('\n')) {
    for (const field of line.trim().split(/\s+/).slice(1)) {
      const [key, value] = field.split('=');
      if (key === 'rbytes') ioReadBytes += Number(value);
      else if (key === 'wbytes') ioWriteBytes += Number(value);
    }
  }
  return { ioReadBytes, ioWriteBytes };
}
