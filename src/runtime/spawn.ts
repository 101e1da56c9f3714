// How a sandbox's first process is started: posix_spawn through libc, not node's spawn(). libuv
// forks (the supervisor's page tables copied) and waits for the exec: measured here, spawn()
// held the event loop 5.7 ms with 45 MB resident and 14 ms with 200 MB (a pool's supervisor),
// posix_spawn 0.6-0.7 ms for both. The child's stdio is made as libuv makes it (a socketpair per
// 'pipe', /dev/null for an ignored 0-2, nothing for an ignored fd past 2), and it is reaped by
// pid like an OCI init (oci/reaper.ts: SIGCHLD, then waitpid of that pid only).
import { EventEmitter } from 'node:events';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { F_GETFL, F_SETFL, O_NONBLOCK, errnoName, loadLibc, lastErrno } from '../util/libc.js';
import { waitForExit } from './oci/reaper.js';
import { spawnWithoutStrayFds } from './fds.js';

/** One slot of the child's fds, as node's spawn() names them. */
export type StdioSlot = 'ignore' | 'inherit' | 'pipe' | number;

/** What the runtimes use of a started process (node's ChildProcess has the same shape). */
export interface Spawned extends EventEmitter {
  readonly pid: number;
  /** Per slot: the parent's end of a 'pipe' slot, else null. */
  readonly stdio: (Readable | Writable | null)[];
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals): boolean;
}

/**
 * Slots the parent writes: stdin and the task's request (task/protocol.ts Fd.Request). As with
 * node's spawn, every slot but stdin is readable too: a pipe is seen to end (and its socket
 * closes) when the child's side of it is gone, whether or not the parent ever wrote or ended it.
 */
const PARENT_WRITES = new Set([0, 3]);

class DirectChild extends EventEmitter implements Spawned {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;

  constructor(
    readonly pid: number,
    readonly stdio: (Readable | Writable | null)[],
  ) {
    super();
    // 'exit' at the exit, 'close' once the exit and every pipe's end are in (as ChildProcess).
    const pipes = stdio.filter((s): s is Readable | Writable => s !== null);
    const closed = pipes.map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
    const exited = waitForExit(pid).then((exit) => {
      this.exitCode = exit.code;
      this.signalCode = exit.signal as NodeJS.Signals | null;
      // As node does at the exit: stdin goes, and a pipe nobody reads is read, so its end is seen
      // (an idle pool sandbox's request pipe is never written or ended).
      stdio[0]?.destroy();
      for (const s of stdio.slice(1)) if (s && (s as Readable).readableFlowing === null) (s as Readable).resume();
      this.emit('exit', exit.code, exit.signal);
    });
    void Promise.all([exited, ...closed]).then(() => this.emit('close', this.exitCode, this.signalCode));
  }

  get stdout(): Readable | null {
    return (this.stdio[1] as Readable | null) ?? null;
  }

  get stderr(): Readable | null {
    return (this.stdio[2] as Readable | null) ?? null;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    // Once reaped, its pid may be another process's.
    if (this.exitCode !== null || this.signalCode !== null) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Start `file` with `args`, an empty environment and `stdio`; throws when it cannot be started
 * (the errno's name in the message, as spawn's error event has it). No fd of this process but
 * those `stdio` names reaches it (fds.ts). `onSpawned` runs before anything waits for the child,
 * so its pid cannot have been reaped and reused meanwhile; when it throws, the child is killed
 * (and reaped) and the error propagates.
 */
export function spawnDirect(file: string, args: string[], stdio: StdioSlot[], onSpawned?: (pid: number) => void): Spawned {
  // C strings: a NUL would end an argument early, and the program would act on a shorter one
  // than every check here saw (node's spawn refuses them too).
  const nul = [file, ...args].find((a) => a.includes('\0'));
  if (nul !== undefined) throw Object.assign(new Error(`spawn ${file}: an argument holds a NUL: ${JSON.stringify(nul.slice(0, 200))}`), { code: 'ERR_INVALID_ARG_VALUE' });
  return spawnWithoutStrayFds(() => spawnWith(file, args, stdio, onSpawned));
}

function spawnWith(file: string, args: string[], stdio: StdioSlot[], onSpawned?: (pid: number) => void): Spawned {
  const libc = loadLibc();
  const dup2: [number, number][] = [];
  const devNull: number[] = [];
  const ours: (number | null)[] = [];
  const theirs: number[] = [];
  try {
    stdio.forEach((slot, fd) => {
      ours[fd] = null;
      if (slot === 'ignore') {
        if (fd <= 2) devNull.push(fd);
      } else if (slot === 'inherit') {
        if (fd > 2) return;
        // As libuv: the child's stdin/stdout/stderr blocking (the flag is the open file's, shared).
        const flags = libc.fcntl(fd, F_GETFL, 0);
        if (flags >= 0 && flags & O_NONBLOCK) libc.fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        dup2.push([fd, fd]);
      } else if (slot === 'pipe') {
        const pair = libc.socketpair();
        if (!pair) throw new Error(`socketpair: errno ${lastErrno()}`);
        ours[fd] = pair[0];
        theirs.push(pair[1]);
        dup2.push([pair[1], fd]);
      } else {
        dup2.push([slot, fd]);
      }
    });
    const pid = libc.spawn(file, [file, ...args], [], dup2, devNull);
    if (pid < 0) {
      const code = errnoName(-pid);
      throw Object.assign(new Error(`spawn ${file} ${code}`), { code });
    }
    try {
      onSpawned?.(pid);
    } catch (e) {
      process.kill(pid, 'SIGKILL');
      void waitForExit(pid);
      throw e;
    }
    const streams: (Socket | null)[] = [];
    try {
      ours.forEach((fd, slot) => {
        streams[slot] = fd === null ? null : new Socket({ fd, readable: slot !== 0, writable: PARENT_WRITES.has(slot) });
        ours[slot] = null; // the socket owns it now
      });
    } catch (e) {
      // It runs, but cannot be talked to: ended, and reaped like any other.
      for (const s of streams) s?.destroy();
      process.kill(pid, 'SIGKILL');
      void waitForExit(pid);
      throw e;
    }
    return new DirectChild(pid, streams);
  } finally {
    for (const fd of theirs) closeSync(fd);
    for (const fd of ours) if (fd !== null && fd !== undefined) closeSync(fd);
  }
}

/**
 * A small program's standard output (getent), started as above: what it wrote before it exited,
 * or before it was killed at `timeoutMs` or past `maxBytes` (as execFile's stdout in its callback).
 */
export function captureOutput(file: string, args: string[], opts: { timeoutMs: number; maxBytes: number }): Promise<string> {
  let child: Spawned;
  try {
    child = spawnDirect(file, args, ['ignore', 'pipe', 'ignore']);
  } catch {
    return Promise.resolve('');
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout!.on('data', (b: Buffer) => {
      const room = opts.maxBytes - bytes;
      bytes += b.length;
      if (room > 0) chunks.push(b.subarray(0, room));
      if (bytes > opts.maxBytes) child.kill('SIGKILL');
    });
    child.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}
