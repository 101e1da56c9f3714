// Execution modes: legacy (in-process, unsafe), secure (sandboxed), hybrid (by trust level).
export { runWithMode, planTaskRun, type ModeRunOptions, type TaskRunPlan } from './run.js';
export { runLegacy, type LegacyRunOptions } from './legacy.js';
