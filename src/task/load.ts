// Loads a Ratchet task: a directory (metadata.json + main.js, or meta.yaml + task.js, with
// optional input/output JSON Schemas, tests/*.json and security.yaml) or a single .js file.
// Every file is read through TaskFiles (files.ts): no links, regular files only, size caps.
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { z } from 'zod';
import { formatZodError } from '../config/resolve.js';
import type { PolicyInput } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { parseJsonFile, TaskFileLimits, TaskFiles } from './files.js';
import { fieldListSchema, metadataPolicy, readEntrypoint, TaskMetadata, type FieldReading } from './metadata.js';
import { readTestCase, type TestCase } from './testcase.js';
import { assertCompiles, schemaOf, ValidationLimits, type CompiledSchema } from './validate.js';

/** Bounds on loading a task and on validating against its schemas. */
export const TaskLimits = z.strictObject({
  files: TaskFileLimits.prefault({}),
  validation: ValidationLimits.prefault({}),
});
export type TaskLimits = z.infer<typeof TaskLimits>;

export interface LoadedTask {
  name: string;
  /**
   * What the operator's task_policies know this task by: its directory's name (a single file's
   * name without .js), chosen by whoever placed it, never its own metadata, which the task writes
   * (a task naming itself after a trusted one took that one's policy, legacy execution included).
   */
  policyName: string;
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

export interface LoadOptions {
  limits?: z.input<typeof TaskLimits>;
  /** Read tests/*.json (default true); false for a run, which never uses them: `tests` is then []. */
  tests?: boolean;
  /**
   * `ref` is a real path the caller has checked (pawl serve: below a task root): refused if a link
   * appears on it before it is opened, so a component swapped for a link after the check leads nowhere.
   */
  resolved?: boolean;
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

/**
 * Load a task: read and check its files, and compile its schemas on the schema thread (a schema
 * that does not compile is InvalidTask here, before anything runs).
 */
export async function loadTask(ref: string, opts: LoadOptions = {}): Promise<LoadedTask> {
  const { task, compiled } = await readTask(ref, opts);
  await compiled;
  return task;
}

/**
 * loadTask without waiting for the schema thread: the task as read, and its schemas' compile
 * (started, to be awaited before the task is trusted to be valid). runTask starts the sandbox
 * meanwhile: the schema thread's start-up is ~100 ms of a CLI run. Independent files are read
 * side by side; the first problem in loadTask's order is the one reported.
 */
export async function readTask(ref: string, opts: LoadOptions = {}): Promise<{ task: LoadedTask; compiled: Promise<void> }> {
  const parsedLimits = TaskLimits.safeParse(opts.limits ?? {});
  if (!parsedLimits.success) throw new PawlError('InvalidPolicy', formatZodError(parsedLimits.error, 'task limits'));
  const limits = parsedLimits.data;
  const caps = limits.files;
  const info = await stat(ref).catch(() => fail(`task not found: ${ref}`));

  if (info.isFile()) {
    const { files, name } = await TaskFiles.forFile(ref, opts.resolved);
    const source = await files.read(name, caps.sourceBytes);
    if (source === null) fail(`task not found: ${ref}`);
    const task = { name: basename(ref), policyName: basename(resolve(ref)).replace(/\.js$/, ''), dir: null, source: source!, filename: ref, metadata: {}, inputSchema: null, outputSchema: null, tests: [], policy: {}, readings: [], limits };
    return { task, compiled: Promise.resolve() };
  }
  if (!info.isDirectory()) fail(`task must be a directory or a .js file: ${ref}`);
  const files = await TaskFiles.at(ref, opts.resolved);

  const [metaJson, metaYaml] = await inOrder([files.read('metadata.json', caps.dataBytes), files.read('meta.yaml', caps.dataBytes)]);
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
  const readSource = async (): Promise<{ source: string; filename: string }> => {
    for (const c of candidates) {
      const source = await files.read(c, caps.sourceBytes);
      if (source !== null) return { source, filename: files.show(c) };
    }
    return fail(entrypoint && 'file' in entrypoint ? `task ${ref}: its entrypoint ${entrypoint.file} does not exist` : `task ${ref} has no main.js (or task.js)`);
  };
  const readSecurity = async (): Promise<PolicyInput | undefined> => {
    const text = await files.read('security.yaml', caps.dataBytes);
    const security = text === null ? undefined : await parseYamlFile(text, files.show('security.yaml'));
    if (security !== undefined && (typeof security !== 'object' || security === null || Array.isArray(security))) {
      throw new PawlError('InvalidPolicy', `${files.show('security.yaml')} must hold a mapping of policy fields`);
    }
    return security as PolicyInput | undefined;
  };
  const readTests = async (): Promise<TestCase[]> => {
    // Only for what runs the tests (pawl test, explain): a run never reads them.
    if (opts.tests === false) return [];
    // One at a time: a task may have up to caps.testFiles of them, caps.testTotalBytes together.
    const tests: TestCase[] = [];
    let total = 0;
    for (const name of await files.list('tests', '.json', caps.testFiles)) {
      const rel = `tests/${name}`;
      const text = await files.read(rel, caps.testBytes);
      if (text === null) continue;
      total += Buffer.byteLength(text);
      if (total > caps.testTotalBytes) fail(`task ${ref}: its tests/*.json hold more than ${caps.testTotalBytes} bytes together (limits.files.testTotalBytes)`);
      tests.push(readTestCase(parseJsonFile(text, files.show(rel)), rel));
    }
    (metadata.test_cases ?? []).forEach((t, i) => tests.push(readTestCase(t, `${metaFile} test_cases[${i}]`)));
    return tests;
  };
  const readSchema = async (what: 'input' | 'output'): Promise<{ schema: CompiledSchema; reading?: FieldReading } | null> => {
    const file = `${what}.schema.json`;
    const text = await files.read(file, caps.dataBytes);
    const inline = metadata[`${what}_schema`];
    const list = metadata[`${what}s`];
    const given = [text !== null && file, inline !== undefined && `${metaFile} ${what}_schema`, list !== undefined && `${metaFile} ${what}s`].filter(Boolean);
    if (given.length > 1) fail(`task ${ref} gives its ${what} schema twice (${given.join(' and ')}): keep one`);
    if (text !== null) return { schema: schemaOf(parseJsonFile(text, files.show(file)), what, file) };
    if (inline !== undefined) {
      return { schema: schemaOf(inline, what, `${metaFile} ${what}_schema`), reading: { field: `${what}_schema`, raw: 'a JSON Schema', source: metaFile, read: `the ${what} schema` } };
    }
    if (list !== undefined) {
      const schema = fieldListSchema(list) as { required?: string[] };
      const reading = { field: `${what}s`, raw: `${Object.keys(list).length} field(s)`, source: metaFile, read: `an object schema${schema.required ? ` requiring ${schema.required.join(', ')}` : ''}` };
      return { schema: schemaOf(schema, what, `${metaFile} ${what}s`), reading };
    }
    return null;
  };
  // Every step starts at once; the problem reported is the first in loadTask's order, in which
  // the input schema's compile comes before anything of the output schema.
  const inputRead = readSchema('input');
  const inputCompiled = inputRead.then((s) => (s ? assertCompiles(s.schema, limits.validation) : undefined));
  inputCompiled.catch(() => {}); // awaited below or by the caller
  const OUTPUT_SCHEMA = 5;
  const [{ source, filename }, { resources, readings }, security, tests, input, output] = await inOrder(
    [readSource(), (async () => metadataPolicy(metadata, metaFile))(), readSecurity(), readTests(), inputRead, readSchema('output')],
    (failed) => (failed === OUTPUT_SCHEMA ? inputCompiled : undefined),
  );
  if (bothMeta) readings.unshift({ field: 'meta.yaml', raw: 'present beside metadata.json', source: 'task directory', read: 'ignored: metadata.json and main.js are the task, as in Ratchet\'s own task loader' });
  if (entrypoint) readings.push({ field: 'entrypoint', raw: JSON.stringify(metadata.entrypoint), source: metaFile, read: 'file' in entrypoint ? `the file to load` : `the function to call` });
  const policy: PolicyInput = { resources };
  if (metadata.test_cases) readings.push({ field: 'test_cases', raw: `${metadata.test_cases.length} case(s)`, source: metaFile, read: 'test cases, run after tests/*.json' });
  for (const s of [input, output]) if (s?.reading) readings.push(s.reading);

  const task: LoadedTask = {
    name: metadata.label ?? metadata.name ?? basename(ref),
    policyName: basename(resolve(ref)),
    dir: ref,
    source,
    filename,
    ...(entrypoint && 'entry' in entrypoint ? { entry: entrypoint.entry } : {}),
    metadata,
    inputSchema: input?.schema ?? null,
    outputSchema: output?.schema ?? null,
    tests,
    policy: security ? mergeTaskPolicy(policy, security) : policy,
    readings,
    limits,
  };
  // The input schema's problem first, as loadTask always reported it.
  const compiled = (async () => {
    await inputCompiled;
    if (task.outputSchema) await assertCompiles(task.outputSchema, limits.validation);
  })();
  compiled.catch(() => {}); // awaited by the caller; never an unhandled rejection meanwhile
  return { task, compiled };
}

/**
 * Every promise settled, then the first failure in the given order thrown (not the first in
 * time), after `before(its index)` settles (a failure of that is thrown instead).
 */
async function inOrder<T extends readonly unknown[]>(ps: readonly [...{ [K in keyof T]: Promise<T[K]> }], before?: (failed: number) => Promise<unknown> | undefined): Promise<T> {
  const settled = await Promise.allSettled(ps);
  const failed = settled.findIndex((r) => r.status === 'rejected');
  if (failed >= 0) {
    await before?.(failed);
    throw (settled[failed] as PromiseRejectedResult).reason;
  }
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

function mergeTaskPolicy(meta: PolicyInput, security: PolicyInput): PolicyInput {
  return { ...meta, ...security, resources: { ...meta.resources, ...security.resources } };
}
