// Output that always arrives whole. A pipe holds 64 KiB; past that node queues the rest and
// writes it as the reader drains, so exiting before the queue is empty cuts the JSON (issue 9.2).
// Every CLI write goes through here, and the CLI ends only after both streams have drained.
import type { Writable } from 'node:stream';

/** Resolves when everything written to `stream` so far is in the kernel (writes are in order). */
export function drained(stream: Writable): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve();
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/** A reader that went away (`| head`) ends our output, not pawl with a stack trace. */
export function quietOnEpipe(stream: Writable): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    stream.destroy();
  });
}

/**
 * Text for a human's terminal: control characters (C0 but tab, DEL, C1) and the bidirectional
 * overrides as \uXXXX, so a task's test names, file names and messages cannot move the cursor,
 * rewrite or reorder the line (a "\r" then "PASS") or recolour it; a newline too, unless the text
 * is pawl's own multi-line message. JSON output escapes them already.
 */
export function printable(s: string, opts: { newlines?: boolean } = {}): string {
  return s.replace(UNSAFE, (c) => (opts.newlines && c === '\n' ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

export const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
export const err = (s: string): void => void process.stderr.write(s.endsWith('\n') ? s : `${s}\n`);

/** Set the exit status, wait until stdout and stderr have drained, then end (never over pending output). */
export async function finish(code: number): Promise<never> {
  process.exitCode = code;
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  // Nothing is pending now; exiting explicitly keeps a stray timer or handle from holding the shell.
  process.exit();
}
