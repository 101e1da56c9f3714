// The leftover list: runs whose cleanup failed (a cgroup that stays busy while a process sleeps in
// uninterruptible I/O, a scratch dir that would not go). The run's result is returned all the
// same; what is left is recorded here, one file per run (no two writers share a file), and every
// gc retries it until it is gone.
import { readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { HostConfig } from '../config/host.js';
import { RuntimeName } from '../config/policy.js';
import { mkdirPrivateSync } from '../util/private-dir.js';

export const Leftover = z.object({
  id: z.string().regex(/^[0-9a-z]+-\d+-[0-9a-f]{8}$/),
  runtime: RuntimeName,
  /** The run's cgroup name under host.cgroupParent, if it was created. */
  cgroup: z.string().regex(/^run-[0-9a-z-]+$/).nullable(),
  /** The run's scratch dir, if it was created. */
  scratch: z.string().nullable(),
  /** The cgroup parent the run's group is under (absent in an older pawl's records). */
  cgroupParent: z.string().optional(),
  error: z.string(),
});
export type Leftover = z.infer<typeof Leftover>;

/** Beside the run dirs, in the state dir: <runDir>/.leftovers/<id>.json. */
export const leftoverDir = (host: HostConfig) => join(host.runDir, '.leftovers');

export async function recordLeftover(host: HostConfig, l: Leftover): Promise<void> {
  mkdirPrivateSync(leftoverDir(host), 0o711);
  await writeFile(join(leftoverDir(host), `${l.id}.json`), JSON.stringify({ ...l, at: new Date().toISOString() }), { mode: 0o600 });
}

export async function listLeftovers(host: HostConfig): Promise<Leftover[]> {
  const out: Leftover[] = [];
  for (const name of await readdir(leftoverDir(host)).catch(() => [] as string[])) {
    if (!name.endsWith('.json')) continue;
    let doc: unknown = null;
    try {
      doc = JSON.parse(await readFile(join(leftoverDir(host), name), 'utf8'));
    } catch {
      /* unreadable: skipped */
    }
    const parsed = Leftover.safeParse(doc);
    if (parsed.success) out.push(parsed.data);
  }
  return out;
}

export async function forgetLeftover(host: HostConfig, id: string): Promise<void> {
  await unlink(join(leftoverDir(host), `${id}.json`)).catch(() => {});
}
