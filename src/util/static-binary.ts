// pawl's two C programs (the Landlock launcher of the rootfs, the bwrap shim on the host) built
// with the host's gcc into static binaries: static, so they need no library the rootfs would have
// to carry and load none at every exec. Built on first use and again whenever the source differs
// from the one the binary was built from (its hash, kept beside the binary: an mtime can lie after
// a copy, or on a 9p mount that caches attributes).
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, fsyncSync, lstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PawlError } from '../errors.js';
import { runTool } from './tool.js';

const GCC = '/usr/bin/gcc';
const FLAGS = ['-static', '-O2', '-Wall'];
/** gcc as root must take nothing from the caller's environment (COMPILER_PATH, LIBRARY_PATH, CPATH... choose what it runs and links). */
const GCC_ENV = { PATH: '/usr/bin:/bin', LC_ALL: 'C' };
const built = new Map<string, Promise<string>>();

/** `binary`, built from `source` unless it was built from this very source; `what` names it in errors. Once per process and binary. */
export function staticBinary(source: string, binary: string, what: string): Promise<string> {
  let p = built.get(binary);
  if (!p) {
    p = build(source, binary, what);
    built.set(binary, p);
    p.catch(() => built.delete(binary)); // a failed build is tried again on the next call
  }
  return p;
}

const sourceHash = (text: Buffer) => createHash('sha256').update(FLAGS.join(' ')).update('\0').update(text).digest('hex');

async function build(source: string, binary: string, what: string): Promise<string> {
  const stamp = `${binary}.source`;
  let text: Buffer;
  try {
    text = readFileSync(source);
  } catch (e) {
    // A package shipped without its C sources: the binary it came with, if it has one.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && trusted(binary, what)) return binary;
    throw e;
  }
  const hash = sourceHash(text);
  if (readStamp(stamp) === hash && trusted(binary, what)) return binary;
  if (!existsSync(GCC)) throw new PawlError('HostUnsupported', `building ${what} needs gcc (Debian: apt-get install gcc libc6-dev), which is not installed`);
  await mkdir(dirname(binary), { recursive: true });
  // A name of its own: a host build and the test VM's (the same checkout over 9p) may run at once.
  const tmp = `${binary}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const r = await runTool(GCC, [...FLAGS, '-o', tmp, source], { env: GCC_ENV, timeout: 120_000 });
  if (r.exitCode !== 0) throw new PawlError('HostUnsupported', `cannot build ${what} with gcc (a static build needs libc6-dev): ${r.stderr}`);
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd); // never an empty binary after a crash, under a stamp that calls it current
  } finally {
    closeSync(fd);
  }
  await rename(tmp, binary); // atomic: a concurrent builder never sees half a binary
  // The stamp after the binary: a reader between the two sees a stale stamp and builds again.
  const stampTmp = `${stamp}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(stampTmp, hash, { mode: 0o644, flag: 'wx' });
  await rename(stampTmp, stamp);
  trusted(binary, what); // throws if what is there now is not one to run
  return binary;
}

function readStamp(stamp: string): string | null {
  try {
    const fd = openSync(stamp, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return readFileSync(fd, 'utf8').trim();
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
}

/**
 * Whether `binary` exists; throws when it is not one pawl may run (root runs it at every
 * sandbox's start): a regular file, not a link, this user's or root's, writable by no one else.
 */
function trusted(binary: string, what: string): boolean {
  let st;
  try {
    st = lstatSync(binary);
  } catch {
    return false;
  }
  const euid = process.geteuid?.() ?? 0;
  if (!st.isFile() || (st.uid !== 0 && st.uid !== euid) || (st.mode & 0o022) !== 0) {
    throw new PawlError('HostUnsupported', `${what}: ${binary} is not a regular file of root's or this user's that no one else can write; remove it and build again (npm run build)`);
  }
  return true;
}
