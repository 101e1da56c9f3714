// v2 memory controller (Documentation/admin-guide/cgroup-v2.rst "Memory").
import { join } from 'node:path';
import { readNumber, readOptional, readText, type PlannedWrite } from '../files.js';
import { flatKeyed } from '../parse.js';
import type { CgroupLimits, CgroupStats } from '../types.js';

export function memoryWrites(dir: string, limits: CgroupLimits): PlannedWrite[] {
  return [
    { path: join(dir, 'memory.max'), value: String(limits.memoryBytes) },
    ...(limits.noSwap ? [{ path: join(dir, 'memory.swap.max'), value: '0', ifMissing: 'swap' as const }] : []),
    // One OOM kill takes the whole run down, so a sandbox never limps on with a killed helper.
    { path: join(dir, 'memory.oom.group'), value: '1' },
  ];
}

export async function memoryStats(dir: string): Promise<Pick<CgroupStats, 'memoryCurrentBytes' | 'memoryPeakBytes' | 'oomKills'>> {
  const [current, peak, events] = await Promise.all([
    readNumber(join(dir, 'memory.current')),
    // memory.peak arrived in Linux 5.19; before it the monitor's polled maximum is all there is.
    readOptional(join(dir, 'memory.peak')),
    readText(join(dir, 'memory.events')),
  ]);
  const e = flatKeyed(events);
  return {
    memoryCurrentBytes: current,
    memoryPeakBytes: peak === null ? current : Number(peak.trim()),
    oomKills: e.get('oom_kill') ?? 0,
  };
}
