// Load and check an operator's security.yaml. Every problem is reported at once, each naming the
// file, line:col, the path in the document and what was expected; the whole file is refused on
// any of them (fail closed: a typo in a task policy must not silently run that task looser).
import { readFile } from 'node:fs/promises';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { effectivePolicy, SecurityConfigError, type ConfigProblem, type SecurityConfig } from './effective.js';
import { SecurityConfigFile } from './schema.js';

/** An operator's file, not a task's; still bounded, so a wrong path (a log file) fails fast. */
const MAX_BYTES = 1024 * 1024;

export async function loadSecurityConfig(file: string): Promise<SecurityConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new SecurityConfigError(file, [{ path: '(file)', message: `cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }]);
  }
  if (text.length > MAX_BYTES) throw new SecurityConfigError(file, [{ path: '(file)', message: `expected at most ${MAX_BYTES} bytes, it has ${text.length}` }]);
  return parseSecurityConfig(text, file);
}

/** The same check for text in hand (the service's reload, tests). */
export function parseSecurityConfig(text: string, file: string): SecurityConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new SecurityConfigError(file, doc.errors.map((e) => ({ path: '(yaml)', message: `not valid YAML: ${e.message.split('\n')[0]}`, ...at(lines, e.pos[0]) })));
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new SecurityConfigError(file, [{ path: '(yaml)', message: (e as Error).message }]);
  }
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new SecurityConfigError(file, [{ path: '(top level)', message: 'expected a mapping with one key, security' }]);
  }

  // zod's record drops a "__proto__" key: that task would silently run on the defaults.
  const policies = (raw as { security?: { task_policies?: unknown } }).security?.task_policies;
  if (policies && typeof policies === 'object' && Object.hasOwn(policies, '__proto__')) {
    throw new SecurityConfigError(file, [{ path: 'security.task_policies.__proto__', message: 'expected a task name; __proto__ cannot name one', ...locate(doc, lines, ['security', 'task_policies', '__proto__'], true) }]);
  }
  const parsed = SecurityConfigFile.safeParse(raw);
  if (!parsed.success) throw new SecurityConfigError(file, parsed.error.issues.flatMap((i) => problems(i, doc, lines)));

  const config: SecurityConfig = { file, security: parsed.data.security, notes: notesFor(parsed.data.security) };
  // Each task policy (and a task named in none) must resolve to a valid policy: cross-field rules
  // (an allow list needs mode restricted, /tmp smaller than memory, ...) live in the policy schema.
  const found: ConfigProblem[] = [];
  for (const name of ['', ...Object.keys(config.security.task_policies)]) {
    try {
      effectivePolicy(config, { taskName: name });
    } catch (e) {
      if (!(e instanceof SecurityConfigError)) throw e;
      for (const p of e.problems) if (!found.some((f) => f.path === p.path && f.message === p.message)) found.push({ ...p, ...locate(doc, lines, docPath(p.path, name), false) });
    }
  }
  if (found.length) throw new SecurityConfigError(file, found);
  return config;
}

/** A dotted document path back to its keys; a task name may itself hold dots. */
function docPath(path: string, taskName: string): string[] {
  const prefix = `security.task_policies.${taskName}`;
  if (taskName && (path === prefix || path.startsWith(`${prefix}.`))) return ['security', 'task_policies', taskName, ...path.slice(prefix.length + 1).split('.').filter(Boolean)];
  return path.split('.');
}

/** zod issues -> problems at document paths; an unknown key is named with the keys expected there. */
function problems(i: z.core.$ZodIssue, doc: Document, lines: LineCounter): ConfigProblem[] {
  const base = i.path.map(String);
  if (i.code === 'unrecognized_keys') {
    const expected = expectedKeys(base);
    return i.keys.map((k) => ({
      path: [...base, k].join('.'),
      message: `unknown key${expected.length ? `: expected one of ${expected.join(', ')}` : ''}`,
      ...locate(doc, lines, [...base, k], true),
    }));
  }
  let message = i.message;
  if (i.code === 'invalid_type' && i.input === undefined) message = `required: ${message}`;
  return [{ path: base.join('.') || '(top level)', message, ...locate(doc, lines, base, false) }];
}

/** The keys the schema allows at a document path (for "unknown key" messages). */
function expectedKeys(path: string[]): string[] {
  type Def = { type: string; innerType?: unknown; in?: unknown; shape?: Record<string, unknown>; valueType?: unknown; element?: unknown; options?: unknown[] };
  const def = (s: unknown) => (s as { _zod: { def: Def } })._zod.def;
  const unwrap = (s: unknown): unknown => {
    const d = def(s);
    if (d.innerType) return unwrap(d.innerType);
    if (d.type === 'pipe') return unwrap(d.in);
    return s;
  };
  let s: unknown = unwrap(SecurityConfigFile);
  for (const k of path) {
    const d = def(s);
    if (d.type === 'object') s = d.shape?.[k];
    else if (d.type === 'record') s = d.valueType;
    else if (d.type === 'array') s = d.element;
    else return [];
    if (!s) return [];
    s = unwrap(s);
  }
  const d = def(s);
  return d.type === 'object' ? Object.keys(d.shape ?? {}) : [];
}

/** line:col of a document path: the key itself for an unknown key, else the value. */
function locate(doc: Document, lines: LineCounter, path: string[], wantKey: boolean): { line?: number; col?: number } {
  let node: unknown = doc.contents;
  let keyNode: unknown;
  for (const k of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && (isScalar(p.key) ? String(p.key.value) : String(p.key)) === k);
      if (!pair) break;
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node) && /^\d+$/.test(k)) {
      keyNode = undefined;
      node = node.items[Number(k)];
    } else break;
  }
  const target = (wantKey && keyNode ? keyNode : node ?? keyNode) as Node | undefined;
  return target?.range ? at(lines, target.range[0]) : {};
}

function at(lines: LineCounter, offset: number): { line: number; col: number } {
  const { line, col } = lines.linePos(offset);
  return { line, col };
}

/** What the file asks for that pawl accepts without applying (said by `config check`). */
function notesFor(doc: SecurityConfig['security']): string[] {
  const notes: string[] = [];
  const rc = doc.runtime_config;
  if (rc.container_runtime === 'docker' || rc.container_runtime === 'podman') {
    notes.push(`security.runtime_config.container_runtime: ${rc.container_runtime} is a container daemon; pawl runs without one and uses its default runtime, bwrap (set bwrap, runc or crun to choose)`);
  }
  if (rc.image_registry !== undefined) notes.push('security.runtime_config.image_registry: not used; pawl builds its own read-only rootfs (pawl rootfs build)');
  if (rc.rootfs !== undefined) notes.push(`security.runtime_config.rootfs.source: not used; pawl builds its read-only rootfs in its state dir (<PAWL_STATE_DIR>/rootfs, pawl rootfs build), not from ${rc.rootfs.source}`);
  const swaps = [
    ...(doc.default_limits?.memory_swap_limit_mb !== undefined ? ['security.default_limits'] : []),
    ...Object.entries(doc.task_policies).filter(([, t]) => t.resource_limits?.memory_swap_limit_mb !== undefined).map(([n]) => `security.task_policies.${n}.resource_limits`),
  ];
  for (const s of swaps) notes.push(`${s}.memory_swap_limit_mb: not applied; pawl always runs a sandbox without swap`);
  if (rc.execution_mode !== 'secure') notes.push(`security.runtime_config.execution_mode: ${rc.execution_mode}: ${rc.execution_mode === 'legacy' ? 'every task' : `tasks at trust level ${rc.legacy_trust_levels.join(', ') || '(none listed)'}`} run in-process WITHOUT a sandbox (unsafe)`);
  return notes;
}
