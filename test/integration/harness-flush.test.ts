// The harness flushes the task's console output before its reply, and closes its stdout then: a
// flush cut short loses what the task printed. The supervisor's reading may stall (a loaded
// machine, a GC pause) while megabytes are queued; that is no reason to give up. The built harness
// with bare node and its protocol on fds 3 and 4, as the sandbox runs it, minus the sandbox: the
// reader here is the test, which stalls on purpose.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const HARNESS = join(fileURLToPath(new URL('../..', import.meta.url)), 'dist', 'task', 'harness.cjs');

function runHarness(source: string, stallMs: number): Promise<{ stdoutBytes: number; reply: unknown; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HARNESS], { env: {}, stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
    const out = child.stdout!;
    let stdoutBytes = 0;
    let stalled = false;
    out.on('data', (b: Buffer) => {
      stdoutBytes += b.length;
      if (stalled) return;
      // The first chunk in: stop reading for a while, as a busy supervisor would.
      stalled = true;
      out.pause();
      setTimeout(() => out.resume(), stallMs);
    });
    let reply = '';
    (child.stdio[4] as Readable).on('data', (b: Buffer) => (reply += b));
    child.stderr!.resume();
    (child.stdio[3] as Writable).end(JSON.stringify({ source, filename: 'main.js', input: {}, context: { executionId: 'flush' }, network: 'none' }));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ stdoutBytes, reply: JSON.parse(reply.replace(/^\x06/, '')), code });
      } catch (e) {
        reject(new Error(`no reply (exit ${code}): ${(e as Error).message}`));
      }
    });
  });
}

describe('the harness\'s request', () => {
  // The pipe's end comes only once the supervisor's event loop gets to it (~1.3 ms of a pooled
  // dispatch): the request's end byte is what the harness waits for.
  it('is read up to its end byte: the reply does not wait for the pipe to close', async () => {
    const child = spawn(process.execPath, [HARNESS], { env: {}, stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    try {
      let reply = '';
      const replied = new Promise<string>((resolve) => (child.stdio[4] as Readable).on('data', (b: Buffer) => {
        reply += b;
        if (reply.endsWith('\n')) resolve(reply);
      }));
      const request = JSON.stringify({ source: 'function(input) { return { twice: input.n * 2 }; }', filename: 'main.js', input: { n: 21 }, context: { executionId: 'end-byte' }, network: 'none' });
      // In two writes a moment apart, the end byte alone in the second; the pipe never ended.
      (child.stdio[3] as Writable).write(request);
      await new Promise((r) => setTimeout(r, 50));
      (child.stdio[3] as Writable).write('\x04');
      const text = await Promise.race([replied, new Promise<string>((r) => setTimeout(() => r('no reply in 10 s'), 10_000))]);
      expect(text, 'the harness waited for the pipe to close').not.toBe('no reply in 10 s');
      expect(JSON.parse(text.replace(/^\x06/, ''))).toMatchObject({ ok: true, output: { twice: 42 } });
    } finally {
      child.kill('SIGKILL');
    }
  }, 30_000);
});

describe('the harness flush before its reply', () => {
  it('waits for a reader that stalls for a second with megabytes queued, and loses nothing', async () => {
    // 8 MiB in 1 KiB lines: far past the socket's buffer, so node queues most of it in user space.
    const r = await runHarness(`function() {
      const line = 'y'.repeat(1023);
      for (let i = 0; i < 8 * 1024; i++) console.log(line);
      return { printed: true };
    }`, 1500);
    expect(r.reply).toMatchObject({ ok: true, output: { printed: true } });
    expect(r.stdoutBytes).toBe(8 * 1024 * 1024);
    expect(r.code).toBe(0);
  }, 60_000);

  it('still replies when the task has stopped its own stdout from draining', async () => {
    // The stream's _write never completes: nothing reaches libuv, the flush cannot end by itself.
    const r = await runHarness(`function() {
      const proc = require('process');
      console.log('before');
      proc.stdout._write = () => {};
      console.log('never');
      return { tampered: true };
    }`, 0);
    expect(r.reply).toMatchObject({ ok: true, output: { tampered: true } });
    expect(r.stdoutBytes).toBe('before\n'.length);
  }, 60_000);

  it('still replies when the task has closed its stdout handle itself', async () => {
    // The flush's own write then throws at once: the reply must go anyway.
    const r = await runHarness(`function() {
      const proc = require('process');
      console.log('before');
      proc.stdout._handle.close();
      return { closed: true };
    }`, 0);
    expect(r.reply).toMatchObject({ ok: true, output: { closed: true } });
    expect(r.stdoutBytes).toBe('before\n'.length);
  }, 60_000);
});
