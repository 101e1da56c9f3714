// One builder for every result and one place that hands it on: the InvalidInput result carries
// the host's real cgroup version, and every finished run reaches each observer once, as returned.
import { afterAll, describe, expect, it } from 'vitest';
import { execProgram, observeRuns, runTask, type RunResult } from '../../src/index.js';
import { probeCgroups } from '../../src/cgroup/probe.js';
import { leftovers, testHost } from '../helpers/host.js';
import { join } from 'node:path';

const host = testHost('report');
const ADD = join(import.meta.dirname, '..', '..', 'examples', 'add');

describe('results', () => {
  afterAll(async () => {
    expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
  });

  it('InvalidInput names the host cgroup version, and observers see it and a finished run', async () => {
    const seen: RunResult[] = [];
    const stop = observeRuns((r) => seen.push(r));
    try {
      const bad = await runTask(ADD, { input: { num1: 'x' }, host });
      expect(bad.error?.kind).toBe('InvalidInput');
      expect(bad.cgroup).toBe((await probeCgroups()).version);
      const ran = await execProgram(['/usr/bin/node', '-e', 'process.exit(3)'], { host });
      expect(ran.exit_code).toBe(3);
      expect(seen).toEqual([bad, ran]);
    } finally {
      stop();
    }
    await execProgram(['/usr/bin/node', '-e', '0'], { host });
    expect(seen).toHaveLength(2);
  });
});
