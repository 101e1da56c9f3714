// Where the service listens. The unix socket is the default and the access control: mode 0660,
// so only its owner and group can talk to pawl. It is created with a umask that never lets it
// exist with a wider mode, and a stale socket (nothing answering) is replaced; anything else at
// the path (a live service, a file) is refused rather than removed.
import { connect } from 'node:net';
import type { Server } from 'node:http';
import { chmod, lstat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PawlError } from '../errors.js';
import { mkdirOpenSync } from '../util/private-dir.js';

export const SOCKET_MODE = 0o660;

export async function listenUnix(server: Server, path: string): Promise<void> {
  // 0755 whatever the umask (under 077 the socket's group could not reach it), only if pawl makes it.
  mkdirOpenSync(dirname(path), 0o755);
  const existing = await lstat(path).catch(() => null);
  if (existing) {
    if (!existing.isSocket()) throw new PawlError('RuntimeError', `cannot listen on ${path}: it exists and is not a socket`);
    if (await answers(path)) throw new PawlError('RuntimeError', `cannot listen on ${path}: another service is listening on it`);
    await unlink(path);
  }
  const old = process.umask(0o117);
  try {
    await listen(server, (cb) => server.listen(path, cb));
  } finally {
    process.umask(old);
  }
  await chmod(path, SOCKET_MODE);
}

export async function listenTcp(server: Server, hostPort: string): Promise<void> {
  const i = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(hostPort.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new PawlError('InvalidPolicy', `--listen: invalid port in "${hostPort}"`);
  await listen(server, (cb) => server.listen(port, host, cb));
}

function listen(server: Server, start: (cb: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => reject(new PawlError('RuntimeError', `cannot listen: ${e.message}`));
    server.once('error', fail);
    start(() => {
      server.off('error', fail);
      resolve();
    });
  });
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
