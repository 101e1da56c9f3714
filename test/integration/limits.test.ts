// The limits not covered in foundation.test.ts: file descriptors, the output caps, /tmp's size.
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { probeCgroups } from '../../src/cgroup/probe.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import { Sandbox } from '../../src/supervisor/sandbox.js';
import { execProgram, PawlError, runTask } from '../../src/index.js';
import { TASK_MIN_FDS } from '../../src/supervisor/run.js';
import { fixture, leftovers, testHost } from '../helpers/host.js';

const host = testHost('limits');
const MiB = 1024 * 1024;

afterAll(async () => {
  expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
});

describe('more limits', () => {
  it('counts the run\'s TCP buffers against its memory limit (cgroup v1 does so only once asked)', async () => {
    // 20 loopback connections whose reader never reads: their buffers are kernel memory of the run.
    const fill = `
      const net = require('net');
      const srv = net.createServer((s) => s.pause());
      srv.listen(0, '127.0.0.1', () => {
        for (let i = 0; i < 20; i++) {
          const c = net.connect(srv.address().port, '127.0.0.1', () => {
            const chunk = Buffer.alloc(1 << 16);
            const pump = () => { while (c.write(chunk)); };
            c.on('drain', pump);
            pump();
          });
        }
        setTimeout(() => { console.log('filled'); setTimeout(() => process.exit(0), 4000); }, 1500);
      });`;
    const { mounts, version } = await probeCgroups();
    if (version !== 'v1') return; // v2 charges socket memory always (the VM suite's hosts)
    const sb = await Sandbox.start({ policy: resolvePolicy({ overrides: { resources: { memory: '64MB', wallTime: '20s' } } }), host, mode: 'program', command: ['/usr/bin/node', '-e', fill] });
    const dir = join(mounts.memory!, host.cgroupParent, `run-${sb.id}`);
    await new Promise((r) => setTimeout(r, 3000));
    const limit = Number(readFileSync(join(dir, 'memory.kmem.tcp.limit_in_bytes'), 'utf8'));
    const peak = Number(readFileSync(join(dir, 'memory.kmem.tcp.max_usage_in_bytes'), 'utf8'));
    const r = await sb.result();
    expect(r.stdout).toContain('filled');
    expect(limit).toBe(8 * MiB); // a budget of their own: an eighth of the memory limit
    expect(peak).toBeGreaterThan(MiB); // counted: 0 when the group's TCP accounting is off
    expect(peak).toBeLessThanOrEqual(12 * MiB); // the budget, and the charge batches of a few CPUs over it (10.2 MB seen)
    // And shown in the run's own figures (limit_in_bytes alone reported ~1 MB for this run).
    expect(r.usage.peak_memory_bytes).toBeGreaterThanOrEqual(peak);
  }, 60_000);

  it('ends a task that runs out of file descriptors as ResourceExhausted/fds (RLIMIT_NOFILE)', async () => {
    const r = await runTask(fixture('fdbomb'), { trustLevel: 'untrusted', host });
    // EMFILE with exactly fds 0-31 in use: the rlimit itself, not a later limit with the same verdict.
    expect(r.stdout).toBe('EMFILE with fds 0-31 open\n');
    expect(r.error).toMatchObject({ kind: 'ResourceExhausted', resource: 'fds', limit_value: 32 });
  });

  it('runs the program under every rlimit of the run, soft and hard alike, with nothing of the shim\'s release left open', async () => {
    // Set on the shim by prlimit(2) before it is released (runtime/bwrap/shim.ts), kept across
    // the shim's drop to the host id, bwrap and the exec of the program.
    const probe = `const fs = require('fs');
      const fds = fs.readdirSync('/proc/self/fd').map((f) => { try { return f + '=' + fs.readlinkSync('/proc/self/fd/' + f); } catch { return f + '=?'; } });
      process.stdout.write(fs.readFileSync('/proc/self/limits', 'utf8') + 'fds ' + fds.join(' '));`;
    const r = await execProgram(['/usr/bin/node', '-e', probe], { host, trustLevel: 'untrusted', policy: { resources: { cpuTime: '9s', diskSpace: '20MB' } } });
    expect(r.status).toBe('succeeded');
    const limit = (name: string) => r.stdout.split('\n').find((l) => l.startsWith(name))!.split(/\s{2,}/).slice(1, 3);
    expect(limit('Max open files')).toEqual(['32', '32']);
    expect(limit('Max file size')).toEqual([String(20 * MiB), String(20 * MiB)]);
    expect(limit('Max core file size')).toEqual(['0', '0']);
    expect(limit('Max cpu time')).toEqual(['10', '10']);
    if (process.getuid?.() === 0) expect(Number(limit('Max processes')[0])).toBeLessThan(1000); // the run's own host id: a per-run limit
    // Sockets: stdout and stderr only (program mode). The shim's release pipe (a socket, at fd 8)
    // and the supervisor's other ends stay outside; node's own fds are pipes, eventfds and epolls.
    const sockets = r.stdout.split('\n').at(-1)!.replace('fds ', '').split(' ').filter((f) => f.includes('socket:')).map((f) => Number(f.split('=')[0]));
    expect(sockets.sort()).toEqual([1, 2]);
  });

  it('refuses a task policy with fewer fds than node needs to start, and runs a task at that minimum', async () => {
    // With 16 or 18 node dies of SIGSEGV before the harness reads the task: a TaskError that
    // blamed the task. A refusal names the figure instead, before any sandbox starts.
    const add = join(import.meta.dirname, '..', '..', 'examples', 'add');
    const refused = runTask(add, { host, input: { num1: 1, num2: 2 }, policy: { resources: { fileDescriptors: 18 } } });
    await expect(refused).rejects.toBeInstanceOf(PawlError);
    await expect(refused).rejects.toMatchObject({ kind: 'InvalidPolicy', message: expect.stringMatching(/fileDescriptors 18 is below the 24/) });
    const r = await runTask(add, { host, input: { num1: 1, num2: 2 }, policy: { resources: { fileDescriptors: TASK_MIN_FDS } } });
    expect(r, JSON.stringify(r.error)).toMatchObject({ status: 'succeeded', output: { sum: 3 } });
  });

  it('a program printing 20000 short lines: every one arrives, read in batches', async () => {
    const r = await execProgram(['/bin/busybox', 'sh', '-c', 'i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done'], { host, policy: { filesystem: { binds: [{ src: '/usr/bin/busybox', dst: '/bin/busybox' }] }, resources: { wallTime: '60s' } } });
    expect(r.status, JSON.stringify(r.error)).toBe('succeeded');
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBe(20000);
    expect(lines.at(-1)).toBe('line 19999');
  }, 90_000);

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
