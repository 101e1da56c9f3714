// The io phase: what the sandbox writes, captured within the policy's caps, and the task's reply
// buffered up to RESULT_MAX. Only this module touches the sandbox's stdio streams.
import type { Readable, Writable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { loadLibc } from '../../util/libc.js';
import type { Policy } from '../../config/policy.js';
import type { RuntimeSandbox } from '../../runtime/index.js';
import { Ready, RequestEnd, type HarnessReply, type TaskRequest } from '../../task/protocol.js';
import { parseReply } from '../../task/reply.js';

const RESULT_MAX = 16 * 1024 * 1024; // a reply larger than this ends the run (ResourceExhausted/output)
/** ioctl FIONREAD (asm-generic, x86_64 and aarch64 alike): bytes waiting in a socket or pipe. */
const FIONREAD = 0x541b;
/** How long a drain may take before the caller waits for the pipes' end instead (each look: 2 ioctls). */
const DRAIN_MS = 500;
/** Looks on consecutive event-loop turns before the drain waits a millisecond between looks. */
const DRAIN_SPIN = 20;

/** The fd under a stream node made from one (spawn.ts: a Socket on the parent's end), or null. */
function fdOf(stream: Readable): number | null {
  const fd = (stream as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/** Output kept up to a cap (and forwarded as it comes); what is cut is counted. */
export class Capped {
  private chunks: Buffer[] = [];
  private kept = 0;
  dropped = 0;
  constructor(private readonly max: number, private readonly forward?: Writable) {}
  push(b: Buffer): void {
    const room = this.max - this.kept;
    const keep = room >= b.length ? b : b.subarray(0, Math.max(0, room));
    if (keep.length) {
      this.chunks.push(keep);
      this.kept += keep.length;
      this.forward?.write(keep);
    }
    this.dropped += b.length - keep.length;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/**
 * A flood is read in batches: a task writing a byte at a time (300k writes in 4 s) cost the
 * supervisor a read and an event each, more CPU than the task spent (1.6 s against 1.1), outside
 * every limit of the run; 64 KB writes past the cap, 1.35 s. A stream past its cap, or read more
 * than PACE_READS times within PACE_WINDOW_MS, is paused and emptied with read(), at most every
 * FLOOD_PAUSE_MS while what comes is small or only counted (past the cap): libuv stops reading after
 * one read, the socket's buffer gathers the writes meanwhile (the task's writes wait when it is
 * full), and the next read takes them in one. Large reads below the cap go on at once. An idle
 * stream waits for 'readable' (no timer), which also comes at its end. Nothing is lost: flush()
 * empties it before the output is looked at.
 */
const FLOOD_PAUSE_MS = 10;
const PACE_READS = 256;
const PACE_WINDOW_MS = 100;
/** A read this large is no flood of small writes: the next follows at once (below the cap). */
const LARGE_READ = 16 * 1024;
class Paced {
  private reads = 0;
  private window = performance.now();
  private paced = false;
  private scheduled = false;
  private lastRead = 0;

  constructor(private readonly stream: Readable, private readonly out: Capped) {
    stream.on('data', this.onData);
  }

  private readonly onData = (b: Buffer): void => {
    this.out.push(b);
    const now = performance.now();
    if (now - this.window > PACE_WINDOW_MS) (this.window = now), (this.reads = 0);
    if (this.out.dropped === 0 && ++this.reads < PACE_READS) return;
    this.paced = true;
    this.stream.off('data', this.onData);
    this.stream.pause();
    // Paused, node still reads until its buffer holds highWaterMark bytes (16 KB: 16384 reads of
    // one byte each); at 1 it stops after one read, and the next read() starts it again.
    (this.stream as unknown as { _readableState: { highWaterMark: number } })._readableState.highWaterMark = 1;
    this.stream.on('readable', this.onReadable);
    this.onReadable();
  };

  private readonly onReadable = (): void => {
    if (this.scheduled) return;
    this.scheduled = true;
    const later = (): void => {
      this.scheduled = false;
      this.flush();
    };
    if (this.out.dropped === 0 && this.lastRead >= LARGE_READ) setImmediate(later);
    else setTimeout(later, FLOOD_PAUSE_MS);
  };

  /** Everything the stream holds, into `out`, now. */
  flush(): void {
    if (!this.paced) return;
    let chunk: Buffer | null;
    while ((chunk = this.stream.read() as Buffer | null) !== null) {
      this.lastRead = chunk.length;
      this.out.push(chunk);
    }
  }
}

export interface IoOptions {
  forwardStdout?: Writable;
  forwardStderr?: Writable;
  /** The reply crossed RESULT_MAX: the run must end (kill reason "output"). */
  onReplyTooLarge: () => void;
  /**
   * Called once when the reply is one complete, valid frame (a JSON line and nothing after it):
   * a pooled run ends there (Sandbox, README "Warm pool"). Unset: the reply is read to EOF.
   */
  onReplyFrame?: () => void;
  /** The harness's ready byte came (protocol.ts Ready): it has booted and waits for its request. */
  onReady?: () => void;
}

export class RunIo {
  readonly stdout: Capped;
  readonly stderr: Capped;
  private pacers: Paced[] = [];
  private reply: Buffer[] = [];
  private replyBytes = 0;
  /** The reply could not be used (too large, not JSON). */
  replyProblem: string | null = null;
  /** The one frame the run ended at (onReplyFrame): later bytes on fd 4 are not read. */
  private frame: HarnessReply | null = null;
  /** A frame was looked at (valid or not): only the first complete line can end a run early. */
  private frameSeen = false;
  /** fd 4's first byte has come (the ready byte, taken off the reply). */
  private readySeen = false;

  constructor(policy: Policy, private readonly opts: IoOptions) {
    this.stdout = new Capped(policy.resources.stdoutMax, opts.forwardStdout);
    this.stderr = new Capped(policy.resources.stderrMax, opts.forwardStderr);
  }

  /**
   * Readers first, before the program runs: the spawned process may exit before the program
   * writes (runc/crun create), and node drains the pipes of an exited child that have none.
   */
  /** What a paced stream holds, into stdout/stderr: before they are read (reap). */
  flush(): void {
    for (const p of this.pacers) p.flush();
  }

  /** Reuse mode reads the reply pipe itself (pool/reuse.ts). */
  detachReply(sandbox: RuntimeSandbox): void {
    sandbox.reply?.removeAllListeners('data');
  }

  /**
   * Everything written to stdout and stderr before the reply has been read (a run ended at its
   * reply: the harness wrote its output, closed fds 1 and 2, and only then replied). The kernel's
   * count of unread bytes on each pipe is 0, and one more turn lets node hand what libuv read to
   * the readers. (What another process of the task was still writing when the run was killed at
   * its reply may be cut short: its output after the reply was never the run's to keep.) false
   * when that cannot be told (a stream with no fd of its own, an ioctl refused, or still bytes
   * after DRAIN_MS: a writer that outlived the kill): then wait for the pipes' end.
   */
  async drained(sandbox: RuntimeSandbox): Promise<boolean> {
    const libc = loadLibc();
    const count = Buffer.alloc(4);
    const streams = [sandbox.stdout, sandbox.stderr];
    const deadline = performance.now() + DRAIN_MS;
    for (let turn = 0; performance.now() < deadline; turn++) {
      let waiting = 0;
      this.flush();
      for (const s of streams) {
        if (s.readableEnded || s.destroyed) continue; // its end was read: nothing more comes
        const fd = fdOf(s);
        if (fd === null || libc.ioctl(fd, FIONREAD, count) !== 0) return false;
        // And what node read but no listener has had (a paced stream's buffer: flushed above).
        waiting += count.readInt32LE(0) + s.readableLength;
      }
      if (turn < DRAIN_SPIN || waiting === 0) await nextTurn();
      else await new Promise((r) => setTimeout(r, 1));
      if (waiting === 0) return true;
    }
    return false;
  }

  attach(sandbox: RuntimeSandbox): void {
    this.pacers = [new Paced(sandbox.stdout, this.stdout), new Paced(sandbox.stderr, this.stderr)];
    sandbox.reply?.on('data', (b: Buffer) => this.onReply(b));
  }

  private onReply(b: Buffer): void {
    if (this.frame) return;
    if (!this.readySeen) {
      this.readySeen = true;
      if (b[0] === Ready.Byte) {
        this.opts.onReady?.();
        b = b.subarray(1);
        if (b.length === 0) return;
      }
    }
    this.replyBytes += b.length;
    if (this.replyBytes > RESULT_MAX) {
      if (!this.replyProblem) {
        this.replyProblem = `the task's result exceeds ${RESULT_MAX} bytes`;
        this.opts.onReplyTooLarge();
      }
      return;
    }
    this.reply.push(b);
    if (this.opts.onReplyFrame && !this.frameSeen && b.includes(10)) this.checkFrame();
  }

  /**
   * The harness writes its reply as one JSON line (JSON.stringify never emits a raw newline).
   * The first complete line ends the run only if it is all there is and it is a valid reply;
   * anything else (a task that wrote fd 4 itself, a partial line) is left to the normal path,
   * which reads to EOF and judges the whole.
   */
  private checkFrame(): void {
    this.frameSeen = true;
    const all = Buffer.concat(this.reply);
    if (all.indexOf(10) !== all.length - 1) return;
    const parsed = parseReply(all.toString('utf8'));
    if ('problem' in parsed) return;
    this.frame = parsed.reply;
    this.opts.onReplyFrame!();
  }

  /** Hand the harness its task (fd 3 inside), once. */
  static send(sandbox: RuntimeSandbox, req: TaskRequest & { egressProxy?: string }): void {
    sandbox.request?.end(`${JSON.stringify(req)}${String.fromCharCode(RequestEnd.Byte)}`);
  }

  /** The task's reply, once the sandbox is gone (null: none, or unusable: see replyProblem). */
  parsedReply(): HarnessReply | null {
    if (this.frame) return this.frame;
    if (this.replyProblem || this.reply.length === 0) return null;
    const parsed = parseReply(Buffer.concat(this.reply).toString('utf8'));
    if ('problem' in parsed) {
      this.replyProblem = parsed.problem;
      return null;
    }
    return parsed.reply;
  }
}
