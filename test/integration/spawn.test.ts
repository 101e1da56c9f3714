// The sandbox's first process is started with posix_spawn (src/runtime/spawn.ts), not node's
// spawn(): it must get exactly the fds node's spawn would give it, no ignored or blocked signal,
// and report its exit and the end of its pipes the same way. Real processes (a shell), nothing
// sandboxed: these are the launcher's own mechanics.
import { describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { spawnDirect } from '../../src/runtime/spawn.js';
import { waitForExit } from '../../src/runtime/oci/reaper.js';
import { FD_CLOEXEC, F_GETFD, F_SETFD, loadLibc } from '../../src/util/libc.js';

const text = (s: Readable | Writable | null) =>
  new Promise<string>((resolve) => {
    let out = '';
    (s as Readable).on('data', (b: Buffer) => (out += b));
    (s as Readable).on('end', () => resolve(out));
  });

describe('spawnDirect', () => {
  it('gives the child exactly its slots: pipes both ways, a passed fd, /dev/null, nothing else', async () => {
    const file = openSync('/etc/hostname', 'r');
    // A stray fd without close-on-exec (a library user's own): never inherited.
    const stray = openSync('/etc/passwd', 'r');
    const libc = loadLibc();
    libc.fcntl(stray, F_SETFD, libc.fcntl(stray, F_GETFD, 0) & ~FD_CLOEXEC);
    try {
      const script = 'ls /proc/self/fd | sort -n | tr "\\n" " "; echo; read -r line <&3; echo "got $line" >&4; readlink /proc/self/fd/0; cat <&5 >/dev/null && echo read5; grep -E "^Sig(Ign|Blk)" /proc/self/status >&2; exit 7';
      const child = spawnDirect('/bin/sh', ['-c', script], ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', file, 'ignore']);
      expect(child.pid).toBeGreaterThan(0);
      const [out, err, reply] = [text(child.stdout), text(child.stderr), text(child.stdio[4]!)];
      (child.stdio[3] as Writable).end('hello\n');
      const exit = await new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
      const closed = new Promise((resolve) => child.once('close', resolve));
      expect(exit).toEqual([7, null]);
      await closed;
      const lines = (await out).split('\n');
      // 0-5 and ls's own directory fd: not the stray, not the ignored slot 6.
      const fds = lines[0]!.trim().split(' ').map(Number);
      expect(fds.slice(0, 6)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(fds.length).toBe(7);
      expect(lines[1]).toBe('/dev/null');
      expect(lines[2]).toBe('read5');
      expect(await reply).toBe('got hello\n');
      // None blocked, and none ignored (node ignores SIGPIPE) but glibc's own two, 32 and 33,
      // which posix_spawn leaves ignored (glibc and musl install their handlers when they use them).
      const [blocked, ignored] = [...(await err).matchAll(/^Sig(?:Blk|Ign):\s+([0-9a-f]+)$/gm)].map((m) => BigInt(`0x${m[1]}`));
      expect(blocked).toBe(0n);
      expect(ignored! & ~(3n << 31n)).toBe(0n);
      expect(child.exitCode).toBe(7);
      expect(child.kill('SIGKILL')).toBe(false); // reaped: its pid is not signalled again
    } finally {
      closeSync(file);
      closeSync(stray);
    }
  });

  it('places fds whose numbers are each other\'s targets', async () => {
    // The parent's fd a must become the child's b and b its a: done in order, the second dup2
    // would copy the first's result.
    const dir = mkdtempSync(join(tmpdir(), 'pawl-spawn-'));
    try {
      writeFileSync(join(dir, 'A'), '');
      writeFileSync(join(dir, 'B'), '');
      const a = openSync(join(dir, 'A'), 'r');
      const b = openSync(join(dir, 'B'), 'r');
      const out = openSync(join(dir, 'out'), 'w');
      try {
        const pid = loadLibc().spawn('/bin/sh', ['/bin/sh', '-c', `readlink /proc/self/fd/${a} /proc/self/fd/${b}`], [], [[a, b], [b, a], [out, 1]], [0, 2]);
        expect(pid).toBeGreaterThan(0);
        expect(await waitForExit(pid)).toEqual({ code: 0, signal: null });
        expect(readFileSync(join(dir, 'out'), 'utf8')).toBe(`${join(dir, 'B')}\n${join(dir, 'A')}\n`);
      } finally {
        for (const fd of [a, b, out]) closeSync(fd);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ends with every pipe closed, a request pipe never written included, and leaks no fd', async () => {
    const before = readdirSync('/proc/self/fd').length;
    // An idle pool sandbox's shape: nobody ever writes or ends slot 3.
    const child = spawnDirect('/bin/sleep', ['30'], ['ignore', 'pipe', 'pipe', 'pipe', 'pipe']);
    child.stdio[3]!.on('error', () => {});
    const closed = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGKILL');
    await closed;
    await new Promise((r) => setImmediate(r));
    expect(readdirSync('/proc/self/fd').length).toBe(before);
    // A program that cannot start leaves none of its pipes behind either.
    expect(() => spawnDirect('/nonexistent/program', [], ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'])).toThrow(/ENOENT/);
    expect(readdirSync('/proc/self/fd').length).toBe(before);
  });

  it('reports a kill as the signal, and a program that cannot start as an error', async () => {
    const child = spawnDirect('/bin/sleep', ['30'], ['ignore', 'pipe', 'pipe']);
    const exit = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
    expect(child.kill('SIGKILL')).toBe(true);
    expect(await exit).toEqual([null, 'SIGKILL']);
    expect(() => spawnDirect('/nonexistent/program', [], ['ignore', 'ignore', 'ignore'])).toThrow(/spawn \/nonexistent\/program ENOENT/);
    // An fd number no process may have: refused while the spawn is set up, named the same way.
    expect(() => spawnDirect('/bin/true', [], ['ignore', 'ignore', 'ignore', 1 << 30])).toThrow(/^spawn \/bin\/true EBADF$/);
  });
});
