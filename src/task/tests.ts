// `pawl test`: run a task's own tests/*.json, each in a fresh sandbox, and compare with
// expected_output the way Ratchet does (a subset match).
import type { PolicyInput } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { runTask } from '../supervisor/run.js';
import type { RunResult } from '../supervisor/result.js';
import { loadTask } from './load.js';
import { subsetMatch } from './validate.js';

export interface TestCaseReport {
  name: string;
  passed: boolean;
  reason?: string;
  result: RunResult;
}

export async function runTaskTests(ref: string, opts: { trustLevel?: string; policy?: PolicyInput } = {}) {
  const task = await loadTask(ref);
  if (task.tests.length === 0) throw new PawlError('InvalidTask', `task ${ref} has no tests/*.json`);
  const cases: TestCaseReport[] = [];
  for (const t of task.tests) {
    const result = await runTask(task, { input: t.input, ...opts });
    const name = t.name ?? t.file;
    if (result.status !== 'succeeded') cases.push({ name, passed: false, reason: `${result.error?.kind}: ${result.error?.message}`, result });
    else if (!subsetMatch(t.expected_output, result.output)) {
      cases.push({ name, passed: false, reason: `expected ${JSON.stringify(t.expected_output)}, got ${JSON.stringify(result.output)}`, result });
    } else cases.push({ name, passed: true, result });
  }
  return { cases, passed: cases.filter((c) => c.passed).length, failed: cases.filter((c) => !c.passed).length };
}
