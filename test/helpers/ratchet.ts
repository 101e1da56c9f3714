// Runs a fixture of test/fixtures/ratchet/ in a real sandbox, with the request fields a runner
// fills from metadata and test cases (entry, mocks, egressProxy), which runTask does not take.
import { join } from 'node:path';
import { loadTask, resolvePolicy, Sandbox, type HostConfig, type PolicyInput, type RunResult } from '../../src/index.js';
import type { TaskRequest } from '../../src/task/protocol.js';

export const RATCHET = join(import.meta.dirname, '..', 'fixtures', 'ratchet');

export async function runFixture(
  host: HostConfig,
  name: string,
  opts: { input?: unknown; trustLevel?: string; policy?: PolicyInput; request?: Partial<TaskRequest> } = {},
): Promise<RunResult> {
  const task = await loadTask(join(RATCHET, name));
  const policy = resolvePolicy({ trustLevel: opts.trustLevel, task: task.policy, overrides: opts.policy });
  const sandbox = await Sandbox.start({ policy, host, mode: 'task' });
  sandbox.send({
    source: task.source, filename: task.filename, input: opts.input ?? {}, context: { executionId: sandbox.id },
    network: policy.network.mode, ...opts.request,
  });
  return sandbox.result();
}
