// Observers of finished runs (an audit log, metrics): each is called once with every final
// RunResult (after the task's output check), whatever the outcome. An observer's failure never
// changes a result.
import type { Policy } from '../../config/policy.js';
import type { RunResult } from '../result.js';

/** What a result alone does not say: which task (a program's argv[0] for exec) under which policy. */
export interface RunContext {
  /** Who the task is (its dir or file name: LoadedTask.policyName); a program's argv[0]. */
  task: string;
  /** The name the task gives itself, when it has one. */
  label?: string;
  policy: Policy;
}

export type RunObserver = (result: RunResult, ctx: RunContext) => void;

const observers = new Set<RunObserver>();

/** Call `fn` with every finished RunResult from now on; returns its removal. */
export function observeRuns(fn: RunObserver): () => void {
  observers.add(fn);
  return () => observers.delete(fn);
}

/** Hand a final result to every observer, and return it. */
export function published(result: RunResult, ctx: RunContext): RunResult {
  for (const fn of observers) {
    try {
      fn(result, ctx);
    } catch {
      /* an observer's own problem */
    }
  }
  return result;
}
