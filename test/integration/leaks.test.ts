// After many runs, killed ones included, nothing of any run is left: no cgroup, scratch dir,
// mount or process.
import { describe, expect, it } from 'vitest';
import { runTask } from '../../src/index.js';
import { fixture, leftovers, testHost } from '../helpers/host.js';

const host = testHost('leak');
const RUNS = 200;

describe('no leftovers', () => {
  it(`leaves nothing behind after ${RUNS} runs, including killed ones`, async () => {
    const verdicts = new Map<string, number>();
    for (let i = 0; i < RUNS; i++) {
      // Every 10th run is killed by the wall clock, every 10th (offset) by the OOM killer.
      const r =
        i % 10 === 3
          ? await runTask(fixture('spin'), { policy: { resources: { wallTime: '200ms' } }, host })
          : i % 10 === 7
            ? await runTask(fixture('membomb'), { policy: { resources: { memory: '64MB' } }, host })
            : await runTask(fixture('noisy'), { input: { a: i, b: 1 }, host });
      const key = r.status === 'succeeded' ? 'succeeded' : `${r.error?.kind}/${r.error?.resource ?? r.error?.limit ?? ''}`;
      verdicts.set(key, (verdicts.get(key) ?? 0) + 1);
    }
    expect(Object.fromEntries(verdicts)).toEqual({ succeeded: 160, 'Timeout/wall': 20, 'ResourceExhausted/memory': 20 });
    expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
  }, 300_000);
});
