// A real supervisor that dies mid-run: a child node process that starts a sandbox through the
// library (compiled dist/) with a test host config, is SIGKILLed by its pid while the sandbox
// runs, and so leaves behind exactly what a crashed pawl would.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { HostConfig } from '../../src/config/host.js';
import type { RuntimeName } from '../../src/runtime/index.js';

const DIST = join(import.meta.dirname, '..', '..', 'dist', 'index.js');

// Runs `node -e` forever in a sandbox and prints the run id once it runs.
const SUPERVISOR = `
import { Sandbox, hostConfig, resolvePolicy } from ${JSON.stringify(DIST)};
const [runtime, cgroupParent, runDir] = process.argv.slice(1);
const host = hostConfig({ cgroupParent, runDir });
const policy = resolvePolicy({ overrides: { runtime, resources: { wallTime: '120s' } } });
const sb = await Sandbox.start({ policy, host, mode: 'program', command: ['/usr/bin/node', '-e', 'setInterval(() => {}, 1000)'] });
// bwrap's start returns once the shim is spawned, before it has moved into the run's group: the
// run "runs" once a process of it is in there.
while ((await sb.pids()).length === 0) await new Promise((r) => setTimeout(r, 1));
console.log(sb.id);
await sb.result();
`;

export interface Running {
  id: string;
  pid: number;
  /** SIGKILL the supervisor by pid and wait until it is gone (reaped). */
  kill(): Promise<void>;
}

/** Starts a supervisor for `host` and resolves once its sandbox runs. */
export async function startSupervisor(runtime: RuntimeName, host: HostConfig): Promise<Running> {
  const sup = spawn(process.execPath, ['--input-type=module', '-e', SUPERVISOR, runtime, host.cgroupParent, host.runDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => sup.once('exit', r));
  const id = await new Promise<string>((resolve, reject) => {
    sup.stdout.once('data', (b: Buffer) => resolve(b.toString().trim()));
    sup.once('exit', (code) => reject(new Error(`supervisor exited with ${code} before the run started`)));
  });
  return {
    id,
    pid: sup.pid!,
    kill: async () => {
      process.kill(sup.pid!, 'SIGKILL');
      await exited;
    },
  };
}
