// v1 memory controller (Documentation/admin-guide/cgroup-v1/memory.rst).
import { join } from 'node:path';
import { readNumber, readText, type PlannedWrite } from '../files.js';
import { keyedValue } from '../parse.js';
import type { CgroupLimits, CgroupStats } from '../types.js';

export function memoryWrites(dir: string, limits: CgroupLimits): PlannedWrite[] {
  const bytes = String(limits.memoryBytes);
  // memsw (memory+swap) must not go below limit_in_bytes, so the plain limit is set first.
  return [
    { path: join(dir, 'memory.swappiness'), value: '0', ifMissing: 'skip' },
    { path: join(dir, 'memory.limit_in_bytes'), value: bytes },
    ...(limits.noSwap ? [{ path: join(dir, 'memory.memsw.limit_in_bytes'), value: bytes, ifMissing: 'swap' as const }] : []),
    // v1 counts a group's TCP buffers only once this is set (v2 always does), and apart from
    // limit_in_bytes: unread loopback connections held ~200 MB past a 128 MB run. A budget of
    // their own, an eighth of the memory limit, and counted in the run's peak (memoryStats).
    { path: join(dir, 'memory.kmem.tcp.limit_in_bytes'), value: String(tcpBudget(limits.memoryBytes)), ifMissing: 'skip' },
  ];
}

/** v1: the TCP buffers a run may hold besides its memory limit. */
export const tcpBudget = (memoryBytes: number) => Math.floor(memoryBytes / 8 / 4096) * 4096;

export type MemoryStats = Pick<CgroupStats, 'memoryCurrentBytes' | 'memoryPeakBytes' | 'oomKills'>;

export async function memoryStats(dir: string): Promise<MemoryStats> {
  const [current, peak, oomControl, tcp, tcpPeak] = await Promise.all([
    readNumber(join(dir, 'memory.usage_in_bytes')),
    readNumber(join(dir, 'memory.max_usage_in_bytes')),
    readText(join(dir, 'memory.oom_control')),
    readNumber(join(dir, 'memory.kmem.tcp.usage_in_bytes')).catch(() => 0),
    readNumber(join(dir, 'memory.kmem.tcp.max_usage_in_bytes')).catch(() => 0),
  ]);
  // The TCP buffers are memory of the run that limit_in_bytes does not count (v2 counts them in
  // memory.current): added, so a run's figures show what it held (the two peaks' sum: at most).
  return {
    memoryCurrentBytes: current + tcp,
    memoryPeakBytes: peak + tcpPeak,
    oomKills: keyedValue(oomControl, 'oom_kill'),
  };
}
