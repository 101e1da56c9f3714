// Progress of long work (pawl rootfs build, pawl test) on one self-rewriting stderr line, only
// when stderr is a terminal: piped or redirected, stderr carries nothing extra, so scripts and
// logs see exactly what they saw before.
import type { WriteStream } from 'node:tty';
import { printable } from './output.js';

export interface Progress {
  /** Replace the progress line (undefined when stderr is not a terminal: pass it on as is). */
  update: ((message: string) => void) | undefined;
  /** Erase the line before the command's own output. */
  done(): void;
}

export function terminalProgress(stream: WriteStream | NodeJS.WriteStream = process.stderr, label = 'pawl'): Progress {
  if (!stream.isTTY) return { update: undefined, done: () => {} };
  let shown = false;
  const fit = (s: string) => (stream.columns && s.length >= stream.columns ? `${s.slice(0, stream.columns - 2)}…` : s);
  return {
    update: (message) => {
      stream.write(`\r\x1b[K${fit(printable(`${label}: ${message}`))}`);
      shown = true;
    },
    done: () => {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}
