// Loads a Ratchet task: a directory (metadata.json + main.js, or meta.yaml + task.js, with
// optional input/output JSON Schemas, tests/*.json and security.yaml) or a single .js file.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatZodError, loadPolicyFile } from '../config/resolve.js';
import type { PolicyInput } from '../config/policy.js';
import { PawlError } from '../errors.js';

export const TaskMetadata = z.looseObject({
  uuid: z.string().optional(),
  version: z.string().optional(),
  label: z.string().optional(),
  description: z.string().optional(),
  author: z.string().optional(),
  tags: z.array(z.string()).optional(),
  /** Milliseconds. */
  timeout: z.number().int().positive().optional(),
  /** e.g. "128MB". */
  memory_limit: z.string().optional(),
});
export type TaskMetadata = z.infer<typeof TaskMetadata>;

export const TaskTestCase = z.looseObject({
  name: z.string().optional(),
  description: z.string().optional(),
  input: z.unknown(),
  expected_output: z.unknown(),
});
export type TaskTestCase = z.infer<typeof TaskTestCase> & { file: string };

export interface LoadedTask {
  name: string;
  /** The task directory, or null for a single file. */
  dir: string | null;
  source: string;
  filename: string;
  metadata: TaskMetadata;
  inputSchema: object | null;
  outputSchema: object | null;
  tests: TaskTestCase[];
  /** The task's own limits: metadata.timeout/memory_limit, then security.yaml on top. */
  policy: PolicyInput;
}

const fail = (msg: string): never => {
  throw new PawlError('InvalidTask', msg);
};

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return fail(`cannot read ${path}: ${(e as Error).message}`);
  }
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    return fail(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

async function jsonSchema(path: string): Promise<object | null> {
  const text = await readOptional(path);
  if (text === null) return null;
  const doc = parseJson(text, path);
  if (typeof doc !== 'object' || doc === null) fail(`${path} must hold a JSON Schema object`);
  return doc as object;
}

export async function loadTask(ref: string): Promise<LoadedTask> {
  const info = await stat(ref).catch(() => fail(`task not found: ${ref}`));
  if (info.isFile()) {
    const source = await readFile(ref, 'utf8');
    return { name: basename(ref), dir: null, source, filename: ref, metadata: {}, inputSchema: null, outputSchema: null, tests: [], policy: {} };
  }
  if (!info.isDirectory()) fail(`task must be a directory or a .js file: ${ref}`);

  const metaJson = await readOptional(join(ref, 'metadata.json'));
  const metaYaml = metaJson === null ? await readOptional(join(ref, 'meta.yaml')) : null;
  let rawMeta: unknown = {};
  if (metaJson !== null) rawMeta = parseJson(metaJson, join(ref, 'metadata.json'));
  else if (metaYaml !== null) {
    try {
      rawMeta = parseYaml(metaYaml) ?? {};
    } catch (e) {
      fail(`${join(ref, 'meta.yaml')} is not valid YAML: ${(e as Error).message}`);
    }
  }
  const meta = TaskMetadata.safeParse(rawMeta);
  if (!meta.success) fail(formatZodError(meta.error, `task metadata in ${ref}`));
  const metadata = meta.data!;

  let filename = join(ref, 'main.js');
  let source = await readOptional(filename);
  if (source === null) {
    filename = join(ref, 'task.js');
    source = await readOptional(filename);
  }
  if (source === null) fail(`task ${ref} has no main.js (or task.js)`);

  const policy: PolicyInput = { resources: {} };
  if (metadata.timeout !== undefined) policy.resources!.wallTime = metadata.timeout;
  if (metadata.memory_limit !== undefined) policy.resources!.memory = metadata.memory_limit;
  const security = await loadPolicyFile(join(ref, 'security.yaml'));

  return {
    name: metadata.label ?? basename(ref),
    dir: ref,
    source: source!,
    filename,
    metadata,
    inputSchema: await jsonSchema(join(ref, 'input.schema.json')),
    outputSchema: await jsonSchema(join(ref, 'output.schema.json')),
    tests: await loadTests(join(ref, 'tests')),
    policy: security ? mergeTaskPolicy(policy, security) : policy,
  };
}

function mergeTaskPolicy(meta: PolicyInput, security: PolicyInput): PolicyInput {
  return { ...meta, ...security, resources: { ...meta.resources, ...security.resources } };
}

async function loadTests(dir: string): Promise<TaskTestCase[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const tests: TaskTestCase[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const path = join(dir, name);
    const parsed = TaskTestCase.safeParse(parseJson(await readFile(path, 'utf8'), path));
    if (!parsed.success) fail(formatZodError(parsed.error, `test case ${path}`));
    tests.push({ ...parsed.data!, file: path });
  }
  return tests;
}
