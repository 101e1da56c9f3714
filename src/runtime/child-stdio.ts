// What every backend's sandbox exposes the same way: the spawned process's pid and its stdio
// (0-2, and the task protocol's pipes at 3 and 4: task/protocol.ts).
import type { Readable, Writable } from 'node:stream';
import type { Spawned } from './spawn.js';

export abstract class ChildStdio {
  protected constructor(protected readonly child: Spawned) {}

  get pid(): number | undefined {
    return this.child.pid;
  }
  get stdout(): Readable {
    return this.child.stdout!;
  }
  get stderr(): Readable {
    return this.child.stderr!;
  }
  get request(): Writable | null {
    return (this.child.stdio[3] as Writable | null) ?? null;
  }
  get reply(): Readable | null {
    return (this.child.stdio[4] as Readable | null) ?? null;
  }
}
