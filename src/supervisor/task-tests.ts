// `pawl test`: run a task's own test cases (tests/*.json and meta.yaml test_cases), each in a fresh
// sandbox, and judge each the way Ratchet's runner does.
import type { PolicyInput } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { runTask } from './run.js';
import { teardownsSettled } from './teardowns.js';
import type { RunResult } from './result.js';
import { loadTask } from '../task/load.js';
import { subsetMatch, type TestCase } from '../task/testcase.js';

export interface TestCaseReport {
  name: string;
  /** Where the case is written: "tests/a.json" or "meta.yaml test_cases[0]". */
  source: string;
  passed: boolean;
  reason?: string;
  result: RunResult;
}

/** A value for a one-line reason: compact, cut short, never throwing. */
function brief(v: unknown, max = 200): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? 'undefined';
  } catch {
    s = '(too deeply nested to show)';
  }
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ');

/** Ratchet's verdict on one case, from the run's result. */
export function judge(t: TestCase, result: RunResult): { passed: boolean; reason?: string } {
  const err = result.error;
  if (t.shouldFail) {
    if (result.status === 'succeeded') return { passed: false, reason: `expected the task to fail, it returned ${brief(result.output)}` };
    if (t.expectedError === undefined) return { passed: true };
    const text = `${err?.kind} ${err?.name ?? ''} ${err?.message ?? ''}`;
    if (text.includes(t.expectedError)) return { passed: true };
    return { passed: false, reason: oneLine(`failed, but not with ${brief(t.expectedError)}: ${err?.kind}: ${err?.message}`) };
  }
  if (result.status !== 'succeeded') return { passed: false, reason: oneLine(`${err?.kind}: ${err?.message}${err?.details?.length ? ` (${err.details.slice(0, 3).join('; ')})` : ''}`) };
  if (t.expected === undefined) return { passed: true };
  let matched: boolean;
  try {
    matched = subsetMatch(t.expected, result.output);
  } catch {
    return { passed: false, reason: 'the output is nested too deeply to compare' };
  }
  return matched ? { passed: true } : { passed: false, reason: `expected ${brief(t.expected)}, got ${brief(result.output)}` };
}

export async function runTaskTests(ref: string, opts: { trustLevel?: string; policy?: PolicyInput; awaitCleanup?: boolean; onProgress?: (message: string) => void } = {}) {
  const { onProgress, ...runOpts } = opts;
  const task = await loadTask(ref);
  if (task.tests.length === 0) throw new PawlError('InvalidTask', `task ${ref} has no tests (tests/*.json or meta.yaml test_cases)`);
  const cases: TestCaseReport[] = [];
  for (const [i, t] of task.tests.entries()) {
    const failed = cases.filter((c) => !c.passed).length;
    onProgress?.(`test ${i + 1}/${task.tests.length} ${t.name ?? t.source}${failed ? ` (${failed} failed so far)` : ''}`);
    const result = await runTask(task, { input: t.input, ...runOpts, ...(t.mocks ? { mocks: t.mocks } : {}) });
    cases.push({ name: t.name ?? t.source, source: t.source, ...judge(t, result), result });
  }
  // Each case's teardown ran beside the next case (runTask's default): none is left running.
  await teardownsSettled(cases.map((c) => c.result.id));
  return { cases, passed: cases.filter((c) => c.passed).length, failed: cases.filter((c) => !c.passed).length };
}
