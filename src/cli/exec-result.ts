// Where `pawl exec` puts its result JSON: never where the program writes first (issue 10.5).
// The program's stdout and stderr pass through to pawl's, so a result appended to either could
// be preceded by a fake one. The caller names a file (--result) or an fd (--result-fd, not 0-2);
// with neither, it goes to a file under the state dir, which no sandbox can reach, and one line
// on stderr names it.
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, openSync, statSync, writeFileSync, writeSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { PawlError } from '../errors.js';
import { UsageError } from './args.js';
import { drained, err } from './output.js';
import { mkdirPrivateSync } from '../util/private-dir.js';

export type ResultTarget =
  | { kind: 'stream'; stream: Writable }
  /** `path`: a file pawl opened (with what the path itself was then, to see it replaced). */
  | { kind: 'fd'; fd: number; path?: { name: string; dev: number; ino: number; stateDir: string } }
  | { kind: 'state'; dir: string };

const SELF = /^\/(dev|proc\/self\/fd|dev\/fd)\/(stdout|stderr|1|2)$/;

/** Decided before the run, so a bad fd is refused before anything starts. */
export function resultTarget(values: { result?: string; 'result-fd'?: string }, stateDir: string): ResultTarget {
  if (values.result !== undefined && values['result-fd'] !== undefined) throw new UsageError('give --result or --result-fd, not both');
  if (values.result !== undefined) {
    // The caller's own stdout/stderr (which may be a socket, where open() fails): write through
    // the stream, after the program's forwarded output has drained.
    const self = SELF.exec(values.result);
    if (self) return { kind: 'stream', stream: self[2] === 'stdout' || self[2] === '1' ? process.stdout : process.stderr };
    // Opened now, before the program runs: what the path names is the caller's. Opened after the
    // run, a path inside a writable bind could be the program's link (root then overwrote the
    // file it named) or FIFO (pawl hung on it). Not truncated until the result is written (the
    // file may be something the program reads), and checked then to be still the file at the path.
    try {
      const fd = openSync(values.result, constants.O_WRONLY | constants.O_CREAT, 0o644);
      const at = lstatSync(values.result);
      return { kind: 'fd', fd, path: { name: values.result, dev: at.dev, ino: at.ino, stateDir } };
    } catch (e) {
      throw new UsageError(`cannot open --result ${values.result} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (values['result-fd'] !== undefined) {
    const v = values['result-fd'];
    if (!/^\d+$/.test(v) || Number(v) < 3) throw new UsageError(`--result-fd expects an fd of 3 or more (0-2 are the program's own), got "${v}"`);
    const fd = Number(v);
    try {
      fstatSync(fd);
    } catch {
      throw new UsageError(`--result-fd ${fd} is not open`);
    }
    // Reopen it close-on-exec and drop the inheritable original, so no spawned process holds it
    // (not possible for a socket: then the original stays, and fd closing in the shim covers it).
    try {
      // 'a', not 'w': reopening a file the caller redirected (3>>log) must not truncate it.
      const own = openSync(`/proc/self/fd/${fd}`, 'a');
      closeSync(fd);
      return { kind: 'fd', fd: own };
    } catch {
      return { kind: 'fd', fd };
    }
  }
  return { kind: 'state', dir: resultsDir(stateDir) };
}

/** `at`: the file offset to write from (a file pawl opened), or null for the fd's own (a pipe, a caller's file). */
function writeFully(fd: number, data: Buffer, at: number | null = null): void {
  for (let off = 0; off < data.length; ) {
    try {
      off += writeSync(fd, data, off, data.length - off, at === null ? null : at + off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); // a non-blocking reader is slow
    }
  }
}

/** Where results go that no sandbox can reach: <stateDir>/results, 0700, each file 0600. */
const resultsDir = (stateDir: string) => join(stateDir, 'results');
const resultFile = (dir: string, id: string) => join(dir, `${id}.json`);
function keep(path: string, text: string): string {
  mkdirPrivateSync(dirname(path));
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/** The path still names the file pawl opened (`st`), as it did then (a link put there is a replacement, a loop too). */
function stillAt(path: { name: string; dev: number; ino: number }, st: Stats): boolean {
  try {
    const now = lstatSync(path.name);
    const through = statSync(path.name);
    return now.dev === path.dev && now.ino === path.ino && through.dev === st.dev && through.ino === st.ino;
  } catch {
    return false;
  }
}

/** The run did not happen (refused, failed to start): a file pawl opened for the result is emptied. */
export function abandonResult(target: ResultTarget): void {
  if (target.kind !== 'fd' || !target.path) return;
  try {
    if (fstatSync(target.fd).isFile()) ftruncateSync(target.fd, 0);
  } catch {
    /* nothing more to do */
  } finally {
    closeSync(target.fd);
  }
}

export async function writeResult(target: ResultTarget, id: string, json: string): Promise<void> {
  const text = `${json}\n`;
  switch (target.kind) {
    case 'stream':
      await drained(process.stdout);
      target.stream.write(text);
      return;
    case 'fd': {
      const bytes = Buffer.from(text);
      const { fd, path } = target;
      if (!path) {
        try {
          writeFully(fd, bytes);
        } finally {
          closeSync(fd);
        }
        return;
      }
      // A file pawl opened is written from its start and cut there; a FIFO as it is. The program
      // could have replaced the path meanwhile (it may be in a writable bind), or made the write
      // fail (filled the filesystem): then the result is kept where no sandbox reaches, and said.
      let lost: string | null = null;
      try {
        const st = fstatSync(fd);
        writeFully(fd, bytes, st.isFile() ? 0 : null);
        if (st.isFile()) ftruncateSync(fd, bytes.length);
        if (!stillAt(path, st)) lost = 'was replaced while the program ran (it is not the file pawl opened)';
      } catch (e) {
        lost = `could not be written (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
      } finally {
        closeSync(fd);
      }
      if (lost) throw new PawlError('RuntimeError', `--result ${path.name} ${lost}: the result is in ${keep(resultFile(resultsDir(path.stateDir), id), text)}`);
      return;
    }
    case 'state': {
      const path = resultFile(target.dir, id);
      try {
        keep(path, text);
      } catch (e) {
        throw new PawlError('RuntimeError', `cannot write the result to ${path} (${(e as NodeJS.ErrnoException).code}); give --result FILE or --result-fd N`);
      }
      await drained(process.stderr); // after everything the program wrote
      err(`pawl: result in ${path}`);
    }
  }
}
