// A real `pawl serve` in a child process (the built CLI), and an HTTP client for its unix socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import type { HostConfig } from '../../src/config/host.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface RunningService {
  proc: ChildProcess;
  socket: string;
  /** The service's stderr, one JSON event per line. */
  events: () => Record<string, unknown>[];
  call: (method: string, path: string, body?: unknown) => Promise<Reply>;
  /** The exit code once it has exited. */
  exited: Promise<number | null>;
}

export function call(socket: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request({ socketPath: socket, method, path, headers: { ...(data !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

export async function startService(socket: string, host: HostConfig, args: string[] = []): Promise<RunningService> {
  const proc = spawn('node', [CLI, 'serve', '--socket', socket, '--run-dir', host.runDir, ...args], {
    env: { ...process.env, PAWL_CGROUP_PARENT: host.cgroupParent },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (stderr.includes('"event":"listening"')) resolve();
    });
    void exited.then((code) => reject(new Error(`pawl serve exited ${code}: ${stderr}`)));
  });
  const events = () => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { proc, socket, events, call: (m, p, b) => call(socket, m, p, b), exited };
}
