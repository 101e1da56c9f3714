// Reading a task directory's files as hostile input. The supervisor usually runs as root, so a
// task whose main.js is a link to /root/secret, /dev/zero or a FIFO must not make it read (or
// block on, or quote) anything outside the task. Rules, for every file pawl reads from a task:
// - no symbolic link anywhere on the way, not even one pointing back inside the tree (simpler to
//   reason about, and Ratchet's own tasks have none): the final component is opened O_NOFOLLOW
//   and the opened fd's path (/proc/self/fd) must be exactly the expected path beneath the task's
//   real directory, which refuses links in any directory component too;
// - no hard link either: a second name of a file is the same file, possibly a host file (a tar
//   unpacked as root makes any link its archive names; /proc/self/fd shows whichever name was
//   opened), so a file with more than one name is refused;
// - regular files only: lstat refuses FIFOs, devices and sockets before anything opens them, the
//   open is O_NONBLOCK, and fstat must show the same regular file lstat saw (no swap in between);
// - a size cap per kind of file, checked on fstat and again while reading (a file may grow).
// Refusals are InvalidTask naming the file and the reason; nothing of the file's content is ever
// put in a message.
import { constants, type Stats } from 'node:fs';
import { lstat, open, opendir, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { Size } from '../config/units.js';
import { PawlError } from '../errors.js';

const KiB = 1024;

/** Bounds on what pawl reads from a task (loadTask's `limits.files`). */
export const TaskFileLimits = z.strictObject({
  /** main.js / task.js / a single-file task. */
  sourceBytes: Size.default(1024 * KiB),
  /** metadata.json, meta.yaml, security.yaml, input/output schema files. */
  dataBytes: Size.default(256 * KiB),
  /** Each tests/*.json (mocked responses can be large). */
  testBytes: Size.default(1024 * KiB),
  /** How many tests/*.json files at most. */
  testFiles: z.number().int().min(1).max(100_000).default(1000),
  /**
   * All tests/*.json together: each parsed case stays in memory (as ~10x its bytes for small JSON
   * values), and 1000 files of 1 MiB took a root supervisor to 4.3 GB and V8's heap limit.
   */
  testTotalBytes: Size.default(8 * 1024 * KiB),
});
export type TaskFileLimits = z.infer<typeof TaskFileLimits>;

const refuse = (name: string, reason: string): never => {
  throw new PawlError('InvalidTask', `${name}: ${reason}`);
};

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link (pawl follows no links in a task)';
  if (st.isDirectory()) return 'a directory, not a regular file';
  if (st.isFIFO()) return 'a FIFO, not a regular file';
  if (st.isSocket()) return 'a socket, not a regular file';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device, not a regular file';
  return 'not a regular file';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The fd's own path (/proc/self/fd) must be exactly `path`: no link anywhere on the way to it. */
async function openedAt(fd: number, path: string, name: string, otherwise: string): Promise<void> {
  const actual = await readlink(`/proc/self/fd/${fd}`).catch(() => refuse(name, 'cannot be checked (is /proc mounted?)'));
  if (actual !== path) refuse(name, otherwise);
}

async function realOf(ref: string, resolved: boolean): Promise<string> {
  const real = await realpath(ref);
  if (resolved && real !== ref) refuse(ref, 'changed while it was checked: a link appeared on its path');
  return real;
}

/** A task directory (or the directory of a single-file task), opened for safe reads. */
export class TaskFiles {
  private constructor(
    /** The directory's real path: every file read must resolve to a path beneath it. */
    readonly root: string,
    /** How files are named in messages (the path the user gave). */
    private readonly shown: string,
  ) {}

  /**
   * `ref` itself may be a link: the operator named it. What is inside it may not. `resolved`: the
   * caller checked `ref` as a real path, which it must still be.
   */
  static async at(ref: string, resolved = false): Promise<TaskFiles> {
    return new TaskFiles(await realOf(ref, resolved), ref);
  }

  /** The directory holding a single-file task; read `basename(file)` from it. */
  static async forFile(file: string, resolved = false): Promise<{ files: TaskFiles; name: string }> {
    const real = await realOf(file, resolved);
    return { files: new TaskFiles(dirname(real), dirname(file)), name: basename(real) };
  }

  /** A file's name as messages show it. */
  show(rel: string): string {
    return join(this.shown, rel);
  }

  /** The file's text, or null when it does not exist. Refuses links, non-regular files, big files. */
  async read(rel: string, maxBytes: number): Promise<string | null> {
    const name = this.show(rel);
    const path = join(this.root, rel);
    let seen: Stats;
    try {
      seen = await lstat(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      return refuse(name, code === 'ENOTDIR' ? 'a directory on its path is not a directory' : `cannot be read (${code ?? 'error'})`);
    }
    if (!seen.isFile()) refuse(name, kindOf(seen));
    if (seen.size > maxBytes) refuse(name, `${seen.size} bytes, over the limit of ${maxBytes} bytes for this file`);
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY).catch((e: NodeJS.ErrnoException) =>
      refuse(name, e.code === 'ELOOP' ? 'a symbolic link (pawl follows no links in a task)' : `cannot be opened (${e.code ?? 'error'})`),
    );
    try {
      const st = await fh.stat();
      if (!st.isFile()) refuse(name, kindOf(st));
      if (st.dev !== seen.dev || st.ino !== seen.ino) refuse(name, 'changed while it was being opened');
      if (st.nlink > 1) refuse(name, `has ${st.nlink} hard links: it may be a file from outside the task (pawl follows no links in a task)`);
      await openedAt(fh.fd, path, name, 'reached through a symbolic link (pawl follows no links in a task)');
      // Read at most maxBytes + 1: a file that grew past the cap after fstat is refused too.
      const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
      let got = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, null);
        if (bytesRead === 0) break;
        got += bytesRead;
        if (got === buf.length) {
          if (got > maxBytes) refuse(name, `over the limit of ${maxBytes} bytes for this file`);
          break;
        }
      }
      try {
        return utf8.decode(buf.subarray(0, got));
      } catch {
        return refuse(name, 'not UTF-8 text');
      }
    } finally {
      await fh.close();
    }
  }

  /** Names in a subdirectory ending in `suffix`, sorted; [] when it does not exist. */
  async list(relDir: string, suffix: string, max: number): Promise<string[]> {
    const name = this.show(relDir);
    const path = join(this.root, relDir);
    const st = await lstat(path).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : refuse(name, `cannot be read (${e.code ?? 'error'})`)));
    if (st === null) return [];
    if (!st.isDirectory()) refuse(name, st.isSymbolicLink() ? 'a symbolic link (pawl follows no links in a task)' : 'not a directory');
    // Listed through an fd opened without following a link, checked to be that very path: a link
    // swapped in after the lstat is neither followed nor listed.
    const dir = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW).catch((e: NodeJS.ErrnoException) =>
      refuse(name, e.code === 'ELOOP' ? 'a symbolic link (pawl follows no links in a task)' : e.code === 'ENOTDIR' ? 'changed while it was read: no longer a directory' : `cannot be read (${e.code ?? 'error'})`));
    try {
      await openedAt(dir.fd, path, name, 'changed while it was read (pawl follows no links in a task)');
      const names: string[] = [];
      let entries = 0;
      for await (const entry of await opendir(`/proc/self/fd/${dir.fd}`)) {
        // Every entry counts: a directory of a million other names is not walked to the end.
        if (++entries > max * 10) refuse(name, `more than ${max * 10} entries`);
        if (!entry.name.endsWith(suffix)) continue;
        if (names.length === max) refuse(name, `more than ${max} ${suffix} files`);
        names.push(entry.name);
      }
      return names.sort();
    } finally {
      await dir.close();
    }
  }
}

/** "not valid JSON (line N)" without quoting the text (V8's message quotes it). */
export function parseJsonFile(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const pos = /position (\d+)/.exec((e as Error).message);
    const line = pos ? ` (line ${text.slice(0, Number(pos[1])).split('\n').length})` : '';
    return refuse(name, `not valid JSON${line}`);
  }
}
