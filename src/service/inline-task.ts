// An inline task ({"source", "input_schema"?, "output_schema"?}) becomes a task directory only
// for as long as the loader reads it: a fresh 0700 dir from mkdtemp, files created exclusively
// (0600), and the dir removed as soon as the task is in memory, whether loading worked or not.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { z } from 'zod';
import { loadTask, type LoadedTask } from '../task/load.js';
import type { InlineTask } from './schema.js';

/** The name inline tasks get for policyFor: a caller cannot claim an operator's task name. */
export const INLINE_TASK_NAME = 'inline';

export async function loadInlineTask(task: z.infer<typeof InlineTask>): Promise<LoadedTask> {
  const dir = await mkdtemp(join(tmpdir(), 'pawl-inline-'));
  try {
    const put = (name: string, text: string) => writeFile(join(dir, name), text, { flag: 'wx', mode: 0o600 });
    await put('main.js', task.source);
    await put('metadata.json', JSON.stringify({ name: INLINE_TASK_NAME }));
    if (task.input_schema) await put('input.schema.json', JSON.stringify(task.input_schema));
    if (task.output_schema) await put('output.schema.json', JSON.stringify(task.output_schema));
    const loaded = await loadTask(dir, { tests: false });
    return { ...loaded, name: INLINE_TASK_NAME, policyName: INLINE_TASK_NAME };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
