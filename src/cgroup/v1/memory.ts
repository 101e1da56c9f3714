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
    // limit_in_bytes: unread loopback connections held ~200 MB past a 128 MB run. The same bound.
    { path: join(dir, 'memory.kmem.tcp.limit_in_bytes'), value: bytes, ifMissing: 'skip' },
  ];
}

export type MemoryStats = Pick<CgroupStats, 'memoryCurrentBytes' | 'memoryPeakBytes' | 'oomKills'>;

export async function memoryStats(dir: string): Promise<MemoryStats> {
  const [current, peak, oomControl] = await Promise.all([
    readNumber(join(dir, 'memory.usage_in_bytes')),
    readNumber(join(dir, 'memory.max_usage_in_bytes')),
    readText(join(dir, 'memory.oom_control')),
  ]);
  return {
    memoryCurrentBytes: current,
    memoryPeakBytes: peak,
    oomKills: keyedValue(oomControl, 'oom_kill'),
  };
}
