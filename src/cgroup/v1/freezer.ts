// v1 freezer (Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst): stops a group's
// processes so none can fork while they are being killed one by one.
import { join } from 'node:path';
import { errno, readOptional, writeControl } from '../files.js';
import { pollUntil, soonThenEvery5ms } from '../../util/wait.js';

const FREEZE_WAIT_MS = 1000;

/** Asks for FROZEN and waits for it, briefly: a task in uninterruptible sleep can hold the group in FREEZING, and SIGKILL still lands once thawed. */
export async function freeze(dir: string): Promise<void> {
  const state = join(dir, 'freezer.state');
  if (!(await writeState(state, 'FROZEN'))) return;
  // 1 ms apart at first: tasks in user space freeze within a millisecond or two.
  await pollUntil(async () => {
    const now = await readOptional(state);
    return now === null || now.trim() === 'FROZEN';
  }, FREEZE_WAIT_MS, soonThenEvery5ms);
}

export async function thaw(dir: string): Promise<void> {
  await writeState(join(dir, 'freezer.state'), 'THAWED');
}

/** False when the group is already gone (kill() of a half-removed run). */
async function writeState(file: string, state: string): Promise<boolean> {
  try {
    await writeControl(file, state);
    return true;
  } catch (e) {
    if (errno(e) === 'ENOENT') return false;
    throw e;
  }
}
