// Loads a Ratchet task: a directory (metadata.json + main.js, or meta.yaml + task.js, with
// optional input/output JSON Schemas, tests/*.json and security.yaml) or a single .js file.
// Every file is read through TaskFiles (files.ts): no links, regular files only, size caps.
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { z } from 'zod';
import { formatZodError } from '../config/resolve.js';
import type { PolicyInput } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { parseJsonFile, TaskFileLimits, TaskFiles } from './files.js';
import { fieldListSchema, metadataPolicy, readEntrypoint, TaskMetadata, type FieldReading } from './metadata.js';
import { readTestCase, type TestCase } from './testcase.js';
import { compileSchema, ValidationLimits, type CompiledSchema } from './validate.js';

/** Bounds on loading a task and on validating against its schemas. */
export const TaskLimits = z.strictObject({
  files: TaskFileLimits.prefault({}),
  validation: ValidationLimits.prefault({}),
});
export type TaskLimits = z.infer<typeof TaskLimits>;

export interface LoadedTask {
  name: string;
  /** The task directory, or null for a single file. */
  dir: string | null;
  source: string;
  filename: string;
  /** The function to call, when meta.yaml's entrypoint names one (TaskRequest.entry). */
  entry?: string;
  metadata: TaskMetadata;
  inputSchema: CompiledSchema | null;
  outputSchema: CompiledSchema | null;
  tests: TestCase[];
  /** The task's own limits: metadata timeout/memory_limit/cpu_limit, then security.yaml on top. */
  policy: PolicyInput;
  /** How each metadata field was read (for `pawl explain`). */
  readings: FieldReading[];
  limits: TaskLimits;
}

const fail = (msg: string): never => {
  throw new PawlError('InvalidTask', msg);
};

async function parseYamlFile(text: string, name: string): Promise<unknown> {
  // yaml (~270 KB bundled) loads only for a task that has a YAML file: most have metadata.json only.
  const { parse: parseYaml, YAMLParseError } = await import('yaml');
  try {
    // The yaml package bounds alias expansion (maxAliasCount), so a "billion laughs" file is refused.
    // logLevel 'error': errors throw, and warnings (which quote the text) are not printed.
    return parseYaml(text, { logLevel: 'error' }) ?? {};
  } catch (e) {
    const line = e instanceof YAMLParseError && e.linePos ? ` (line ${e.linePos[0].line})` : '';
    return fail(`${name}: not valid YAML${line}`);
  }
}

export async function loadTask(ref: string, opts: { limits?: z.input<typeof TaskLimits> } = {}): Promise<LoadedTask> {
  const parsedLimits = TaskLimits.safeParse(opts.limits ?? {});
  if (!parsedLimits.success) throw new PawlError('InvalidPolicy', formatZodError(parsedLimits.error, 'task limits'));
  const limits = parsedLimits.data;
  const caps = limits.files;
  const info = await stat(ref).catch(() => fail(`task not found: ${ref}`));

  if (info.isFile()) {
    const { files, name } = await TaskFiles.forFile(ref);
    const source = await files.read(name, caps.sourceBytes);
    if (source === null) fail(`task not found: ${ref}`);
    return { name: basename(ref), dir: null, source: source!, filename: ref, metadata: {}, inputSchema: null, outputSchema: null, tests: [], policy: {}, readings: [], limits };
  }
  if (!info.isDirectory()) fail(`task must be a directory or a .js file: ${ref}`);
  const files = await TaskFiles.at(ref);

  const metaJson = await files.read('metadata.json', caps.dataBytes);
  const metaYaml = await files.read('meta.yaml', caps.dataBytes);
  // Both: Ratchet's own task loader reads metadata.json (and main.js), so pawl does too, and says so.
  const bothMeta = metaJson !== null && metaYaml !== null;
  const metaFile = metaJson !== null ? 'metadata.json' : 'meta.yaml';
  const rawMeta = metaJson !== null ? parseJsonFile(metaJson, files.show(metaFile)) : metaYaml !== null ? await parseYamlFile(metaYaml, files.show(metaFile)) : {};
  const meta = TaskMetadata.safeParse(rawMeta);
  if (!meta.success) fail(formatZodError(meta.error, `task metadata in ${files.show(metaFile)}`));
  const metadata = meta.data!;

  // The source: meta.yaml's entrypoint when it names a file, else main.js, else task.js.
  const entrypoint = metadata.entrypoint === undefined ? null : readEntrypoint(metadata.entrypoint, files.show(metaFile));
  const candidates = entrypoint && 'file' in entrypoint ? [entrypoint.file] : ['main.js', 'task.js'];
  let filename = '';
  let source: string | null = null;
  for (const c of candidates) {
    source = await files.read(c, caps.sourceBytes);
    filename = files.show(c);
    if (source !== null) break;
  }
  if (source === null) fail(entrypoint && 'file' in entrypoint ? `task ${ref}: its entrypoint ${entrypoint.file} does not exist` : `task ${ref} has no main.js (or task.js)`);

  const { resources, readings } = metadataPolicy(metadata, metaFile);
  if (bothMeta) readings.unshift({ field: 'meta.yaml', raw: 'present beside metadata.json', source: 'task directory', read: 'ignored: metadata.json and main.js are the task, as in Ratchet\'s own task loader' });
  if (entrypoint) readings.push({ field: 'entrypoint', raw: JSON.stringify(metadata.entrypoint), source: metaFile, read: 'file' in entrypoint ? `the file to load` : `the function to call` });
  const policy: PolicyInput = { resources };
  const securityText = await files.read('security.yaml', caps.dataBytes);
  const security = securityText === null ? undefined : await parseYamlFile(securityText, files.show('security.yaml'));
  if (security !== undefined && (typeof security !== 'object' || Array.isArray(security))) {
    throw new PawlError('InvalidPolicy', `${files.show('security.yaml')} must hold a mapping of policy fields`);
  }

  const schema = async (what: 'input' | 'output'): Promise<CompiledSchema | null> => {
    const file = `${what}.schema.json`;
    const text = await files.read(file, caps.dataBytes);
    const inline = metadata[`${what}_schema`];
    const list = metadata[`${what}s`];
    const given = [text !== null && file, inline !== undefined && `${metaFile} ${what}_schema`, list !== undefined && `${metaFile} ${what}s`].filter(Boolean);
    if (given.length > 1) fail(`task ${ref} gives its ${what} schema twice (${given.join(' and ')}): keep one`);
    if (text !== null) return compileSchema(parseJsonFile(text, files.show(file)), what, file, limits.validation);
    if (inline !== undefined) {
      readings.push({ field: `${what}_schema`, raw: 'a JSON Schema', source: metaFile, read: `the ${what} schema` });
      return compileSchema(inline, what, `${metaFile} ${what}_schema`, limits.validation);
    }
    if (list !== undefined) {
      const schema = fieldListSchema(list) as { required?: string[] };
      readings.push({ field: `${what}s`, raw: `${Object.keys(list).length} field(s)`, source: metaFile, read: `an object schema${schema.required ? ` requiring ${schema.required.join(', ')}` : ''}` });
      return compileSchema(schema, what, `${metaFile} ${what}s`, limits.validation);
    }
    return null;
  };

  const tests: TestCase[] = [];
  for (const name of await files.list('tests', '.json', caps.testFiles)) {
    const rel = `tests/${name}`;
    const text = await files.read(rel, caps.testBytes);
    if (text !== null) tests.push(readTestCase(parseJsonFile(text, files.show(rel)), rel));
  }
  (metadata.test_cases ?? []).forEach((t, i) => tests.push(readTestCase(t, `${metaFile} test_cases[${i}]`)));
  if (metadata.test_cases) readings.push({ field: 'test_cases', raw: `${metadata.test_cases.length} case(s)`, source: metaFile, read: 'test cases, run after tests/*.json' });
  const inputSchema = await schema('input');
  const outputSchema = await schema('output');

  return {
    name: metadata.label ?? metadata.name ?? basename(ref),
    dir: ref,
    source: source!,
    filename,
    ...(entrypoint && 'entry' in entrypoint ? { entry: entrypoint.entry } : {}),
    metadata,
    inputSchema,
    outputSchema,
    tests,
    policy: security ? mergeTaskPolicy(policy, security as PolicyInput) : policy,
    readings,
    limits,
  };
}

function mergeTaskPolicy(meta: PolicyInput, security: PolicyInput): PolicyInput {
  return { ...meta, ...security, resources: { ...meta.resources, ...security.resources } };
}
