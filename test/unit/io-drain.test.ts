// A pooled run ends at its reply, before the runtime's processes are dead and so before its
// pipes end: its output is complete once the kernel holds no unread byte on stdout and stderr
// and node has handed over what it read (RunIo.drained). Real pipes, a real writer.
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';
import type { RuntimeSandbox } from '../../src/runtime/index.js';
import { RunIo } from '../../src/supervisor/phases/io.js';

describe('RunIo.drained', () => {
  it('returns once every byte written before the reply has been read, and not before', async () => {
    // 60 KB on stdout and 20 KB on stderr (under a socket's buffer, so the writer never blocks),
    // then "done" on fd 3: the reply's stand-in.
    const child = spawn('/bin/sh', ['-c', 'head -c 60000 /dev/zero; head -c 20000 /dev/zero >&2; echo done >&3; exec sleep 5'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    const stdout = child.stdout!;
    const stderr = child.stderr!;
    // Nothing read until the reply: all of it waits in the kernel, as it may at a reply.
    stdout.pause();
    stderr.pause();
    const io = new RunIo(resolvePolicy({ trustLevel: 'limited' }), { onReplyTooLarge: () => {} });
    io.attach({ stdout, stderr, reply: null } as unknown as RuntimeSandbox);
    try {
      await new Promise<void>((resolve) => (child.stdio[3] as Readable).once('data', () => resolve()));
      stdout.resume();
      stderr.resume();
      expect(await io.drained({ stdout, stderr } as unknown as RuntimeSandbox)).toBe(true);
      expect(io.stdout.text().length).toBe(60_000);
      expect(io.stderr.text().length).toBe(20_000);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('cannot tell for a stream with no fd of its own: the caller then waits for the pipes\' end', async () => {
    const { PassThrough } = await import('node:stream');
    const io = new RunIo(resolvePolicy({ trustLevel: 'limited' }), { onReplyTooLarge: () => {} });
    expect(await io.drained({ stdout: new PassThrough(), stderr: new PassThrough() } as unknown as RuntimeSandbox)).toBe(false);
  });
});
