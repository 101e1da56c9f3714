// A path task from a client: only under one of the operator's task roots, checked on the path as
// given (before touching the filesystem) and again after resolving links, so neither "..", nor a
// link inside a root, makes pawl read a file outside them (a task's source and errors go back to
// the client).
import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { ApiError } from './errors.js';

/** The root `path` lies under (or is), if any. */
const rootOf = (path: string, roots: string[]) => roots.find((r) => path === r || path.startsWith(r.endsWith(sep) ? r : r + sep));
const under = (path: string, roots: string[]) => rootOf(path, roots) !== undefined;

export async function resolveTaskPath(given: string, roots: string[]): Promise<string> {
  if (!roots.length) throw new ApiError(403, 'task_forbidden', 'this service runs inline tasks only ({"task": {"source": ...}}); path tasks need --task-root');
  if (!isAbsolute(given) || given.includes('\0')) throw new ApiError(422, 'invalid_task', `task must be an absolute path or an inline task, got "${given.slice(0, 200)}"`);
  const lexical = resolve(given);
  if (!under(lexical, roots)) throw new ApiError(403, 'task_forbidden', `task ${lexical} is outside the service's task roots`);
  let real: string;
  try {
    real = await realpath(lexical);
  } catch {
    throw new ApiError(404, 'task_not_found', `task not found: ${lexical}`);
  }
  if (!under(real, roots)) throw new ApiError(403, 'task_forbidden', `task ${lexical} leads outside the service's task roots`);
  return real;
}

/**
 * What the operator's task_policies know a path task by: its path below its task root (a file's
 * without .js). A direct child's is its name; one deeper is "group/name", so a task author who
 * ships a subdirectory named like a trusted task does not get that task's entry.
 */
export function policyNameIn(real: string, roots: string[]): string {
  return relative(rootOf(real, roots) ?? '', real).replace(/\.js$/, '') || '.';
}
