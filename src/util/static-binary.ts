// pawl's two C programs (the Landlock launcher of the rootfs, the bwrap shim on the host) built
// with the host's gcc into static binaries: static, so they need no library the rootfs would have
// to carry and load none at every exec. Built on first use and again whenever the source is newer.
import { existsSync, statSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { PawlError } from '../errors.js';
import { runTool } from './tool.js';

const GCC = ['/usr/bin/gcc', '/usr/local/bin/gcc'];
const built = new Map<string, Promise<string>>();

/** `binary`, built from `source` unless it is already newer than it; `what` names it in errors. Once per process and binary. */
export function staticBinary(source: string, binary: string, what: string): Promise<string> {
  let p = built.get(binary);
  if (!p) {
    p = build(source, binary, what);
    built.set(binary, p);
    p.catch(() => built.delete(binary)); // a failed build is tried again on the next call
  }
  return p;
}

async function build(source: string, binary: string, what: string): Promise<string> {
  const src = statSync(source);
  if (existsSync(binary) && statSync(binary).mtimeMs >= src.mtimeMs) return binary;
  const gcc = GCC.find((p) => existsSync(p));
  if (!gcc) throw new PawlError('HostUnsupported', `building ${what} needs gcc (Debian: apt-get install gcc libc6-dev), which is not installed`);
  await mkdir(dirname(binary), { recursive: true });
  // A name of its own: a host build and the test VM's (the same checkout over 9p) may run at once.
  const tmp = `${binary}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const r = await runTool(gcc, ['-static', '-O2', '-Wall', '-o', tmp, source]);
  if (r.exitCode !== 0) throw new PawlError('HostUnsupported', `cannot build ${what} with gcc (a static build needs libc6-dev): ${r.stderr}`);
  await rename(tmp, binary); // atomic: a concurrent builder never sees half a binary
  return binary;
}
