// killUntilEmpty on a stand-in group (a plain file as cgroup.procs, a recording kill): after its
// first round it reads the group again once the runtime has ended, not every few ms before.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killUntilEmpty } from '../../src/cgroup/files.js';
import { hostOps } from '../../src/cgroup/options.js';

const dir = mkdtempSync(join(tmpdir(), 'pawl-kill-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A pid no process of this test has: the recording kill never signals anything.
const PID = 2 ** 22 + 12345;

function group(name: string) {
  const procs = join(dir, name);
  writeFileSync(procs, `${PID}\n`);
  const kills: number[] = [];
  const ops = { ...hostOps, kill: (pid: number) => void kills.push(pid) };
  return { procs, kills, ops, die: () => writeFileSync(procs, '') };
}

describe('killUntilEmpty', () => {
  it('kills what is listed, then waits for the runtime to end before it reads the group again', async () => {
    const g = group('a');
    let ended!: () => void;
    const exited = new Promise<void>((r) => (ended = r));
    // The process dies (leaves the list) and the runtime ends 60 ms after the kill.
    setTimeout(() => {
      g.die();
      ended();
    }, 60);
    expect(await killUntilEmpty([g.procs], g.ops, 2000, exited)).toEqual([]);
    expect(g.kills).toEqual([PID]); // one round before the end, none after: the list was empty
  });

  it('without the runtime\'s end to wait for, reads and kills every few ms until the group is empty', async () => {
    const g = group('b');
    setTimeout(g.die, 60);
    expect(await killUntilEmpty([g.procs], g.ops, 2000)).toEqual([]);
    expect(g.kills.length).toBeGreaterThan(5);
  });

  it('an end that never comes does not stretch the wait: what is left is returned at the deadline', async () => {
    const g = group('c');
    const t0 = Date.now();
    expect(await killUntilEmpty([g.procs], g.ops, 200, new Promise(() => {}))).toEqual([PID]);
    expect(Date.now() - t0).toBeLessThan(1500);
  });
});
