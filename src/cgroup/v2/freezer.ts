// v2 freezer (cgroup.freeze, Linux 5.2+): the fallback for kernels without cgroup.kill, so the
// group cannot fork while its processes are killed one by one.
import { join } from 'node:path';
import { errno, readOptional, writeControl } from '../files.js';
import { pollUntil, soonThenEvery5ms } from '../../util/wait.js';
import { keyedValue } from '../parse.js';

const FREEZE_WAIT_MS = 1000;

/** Freezes and waits for cgroup.events "frozen 1", briefly: SIGKILL still lands once thawed. */
export async function freeze(dir: string): Promise<void> {
  if (!(await writeFreeze(dir, '1'))) return;
  await pollUntil(async () => {
    const events = await readOptional(join(dir, 'cgroup.events'));
    return events === null || keyedValue(events, 'frozen') === 1;
  }, FREEZE_WAIT_MS, soonThenEvery5ms);
}

export async function thaw(dir: string): Promise<void> {
  await writeFreeze(dir, '0');
}

/** False when the group is already gone (kill() of a half-removed run). */
async function writeFreeze(dir: string, value: string): Promise<boolean> {
  try {
    await writeControl(join(dir, 'cgroup.freeze'), value);
    return true;
  } catch (e) {
    if (errno(e) === 'ENOENT') return false;
    throw e;
  }
}
