// v2 cpu controller (Documentation/admin-guide/cgroup-v2.rst "CPU").
import { join } from 'node:path';
import { readText, type PlannedWrite } from '../files.js';
import { keyedValue } from '../parse.js';
import type { CgroupLimits, CgroupStats } from '../types.js';

export function cpuWrites(dir: string, limits: CgroupLimits): PlannedWrite[] {
  return [{ path: join(dir, 'cpu.max'), value: `${limits.cpuQuotaUs} ${limits.cpuPeriodUs}`, ...(limits.cpuAtDispatch ? { atDispatch: true as const } : {}) }];
}

export async function cpuStats(dir: string): Promise<Pick<CgroupStats, 'cpuUsageUs'>> {
  return { cpuUsageUs: keyedValue(await readText(join(dir, 'cpu.stat')), 'usage_usec') };
}
