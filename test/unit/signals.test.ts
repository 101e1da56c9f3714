// One signal table for every exit pawl reports: a runtime's 128+N (bwrap's pid 1) and a real
// waitpid status (an OCI sandbox's init, reaped by pawl) name the same signal the same way.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { holdSubreaper, waitForExit } from '../../src/runtime/oci/reaper.js';
import { programExit } from '../../src/supervisor/classify.js';
import { signalName } from '../../src/util/signals.js';

function orphan(script: string): number {
  return Number(execFileSync('/bin/sh', ['-c', `/bin/sh -c '${script}' >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' }).trim());
}

describe('signal names', () => {
  it('names every signal by its usual name, whichever way the exit arrived', () => {
    expect([12, 6, 29, 10, 31].map(signalName)).toEqual(['SIGUSR2', 'SIGABRT', 'SIGIO', 'SIGUSR1', 'SIGSYS']);
    expect(programExit(128 + 12, null)).toEqual({ exit_code: null, signal: 'SIGUSR2' });
    expect(programExit(128 + 6, null)).toEqual({ exit_code: null, signal: 'SIGABRT' });
    expect(programExit(128 + 40, null)).toEqual({ exit_code: null, signal: 'SIG40' });
  });

  it('a reaped init killed by SIGUSR2 or SIGABRT is reported as such', async () => {
    const release = holdSubreaper();
    const pids = ['USR2', 'ABRT'].map((s) => orphan(`sleep 0.2; kill -${s} $$`));
    release();
    expect(await Promise.all(pids.map(waitForExit))).toEqual([{ code: null, signal: 'SIGUSR2' }, { code: null, signal: 'SIGABRT' }]);
  });
});
