// The limits not covered in foundation.test.ts: file descriptors, the output caps, /tmp's size.
import { afterAll, describe, expect, it } from 'vitest';
import { runTask } from '../../src/index.js';
import { fixture, leftovers, testHost } from '../helpers/host.js';

const host = testHost('limits');
const MiB = 1024 * 1024;

afterAll(async () => {
  expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
});

describe('more limits', () => {
  it('ends a task that runs out of file descriptors as ResourceExhausted/fds (RLIMIT_NOFILE)', async () => {
    const r = await runTask(fixture('fdbomb'), { trustLevel: 'untrusted', host });
    // EMFILE with exactly fds 0-31 in use: the rlimit itself, not a later limit with the same verdict.
    expect(r.stdout).toBe('EMFILE with fds 0-31 open\n');
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'fds', limit_value: 32 });
  });

  it('keeps 1 MB of stdout by default and reports what it dropped; the run still succeeds', async () => {
    const r = await runTask(fixture('chatty'), { host });
    expect(r.status).toBe('succeeded');
    expect(Buffer.byteLength(r.stdout)).toBe(MiB);
    expect(r.stdout_dropped_bytes).toBe(2 * MiB);
  });

  it('caps /tmp at tmpSize: filling it ends as ResourceExhausted/disk', async () => {
    const r = await runTask(fixture('tmpfill'), { policy: { resources: { tmpSize: '8MB', memory: '256MB' } }, host });
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'disk' });
    expect(r.error?.message).toMatch(/ENOSPC/);
  });
});
