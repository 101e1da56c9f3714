// The exit status of an OCI sandbox comes from reaping its init after `create` handed it over:
// the same mechanism here, with a shell that leaves an orphan behind instead of runc.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { holdSubreaper, waitForExit } from '../../src/runtime/oci/reaper.js';

/** Starts `script` in the background from a shell that exits at once; returns the orphan's pid. */
function orphan(script: string): number {
  return Number(execFileSync('/bin/sh', ['-c', `/bin/sh -c '${script}' >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' }).trim());
}

const parentOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);

describe('reaping an orphaned init as child subreaper', () => {
  it('becomes the parent of an orphan and gets its exit status, after letting go of the flag', async () => {
    const release = holdSubreaper();
    const pid = orphan('sleep 0.2; exit 7');
    release();
    expect(parentOf(pid)).toBe(process.pid);
    expect(await waitForExit(pid)).toEqual({ code: 7, signal: null });
  });

  it('adopts nothing once released', () => {
    holdSubreaper()();
    const pid = orphan('sleep 0.2');
    expect(parentOf(pid)).not.toBe(process.pid);
  });

  it('reports the signal that killed it, and leaves no zombie', async () => {
    const release = holdSubreaper();
    const pid = orphan('sleep 0.2; kill -KILL $$');
    release();
    expect(await waitForExit(pid)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(() => readFileSync(`/proc/${pid}/stat`)).toThrow(/ENOENT/);
  });

  it('waits for several at once', async () => {
    const release = holdSubreaper();
    const pids = [1, 2, 3].map((n) => orphan(`sleep 0.${n}; exit ${n}`));
    release();
    expect(await Promise.all(pids.map(waitForExit))).toEqual([1, 2, 3].map((code) => ({ code, signal: null })));
  });
});
