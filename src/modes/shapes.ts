// The task function of a file, found in a node:vm context the way the in-sandbox harness finds it
// (src/task/harness.ts, README "Ratchet tasks"): the metadata's entry point; module.exports when a
// function, or its main, or its only function; a top-level main; the file's value; the only
// top-level function. The harness cannot be imported here (importing it runs it: it reads its
// request from fd 3), so the order is restated; the difference is where globals live: the harness
// runs in the sandbox's own global scope, this in a fresh context per run.
import { Script, type Context } from 'node:vm';

export type TaskFn = (input: unknown, context: unknown) => unknown;

/** A file with no task function, or with several and nothing to choose by: the harness's InvalidTask. */
export class ShapeError extends Error {
  override name = 'InvalidTask';
}

const isFn = (v: unknown): v is TaskFn => typeof v === 'function' && !/^class\b/.test(Function.prototype.toString.call(v));
const RESERVED = new Set('await break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof let new null return static super switch this throw true try typeof var void while with yield'.split(' '));

/** A script (declarations, CommonJS), or, when that is a syntax error, one expression (`function(input) {...}`). */
function compile(source: string, filename: string): { expression: boolean; script: Script } {
  let scriptError: SyntaxError;
  try {
    return { expression: false, script: new Script(source, { filename }) };
  } catch (e) {
    if (!(e instanceof SyntaxError) && (e as Error)?.name !== 'SyntaxError') throw e;
    scriptError = e as SyntaxError;
  }
  try {
    return { expression: true, script: new Script(`(${source.trim().replace(/;\s*$/, '')}\n)`, { filename }) };
  } catch (e) {
    throw /require a function name/.test(scriptError.message) ? e : scriptError;
  }
}

/** Functions the script added to the context: new properties, and const/let bindings probed by name. */
function topLevelFunctions(ctx: Context, source: string, before: Set<string>, timeout: number): Map<string, TaskFn> {
  const found = new Map<string, TaskFn>();
  for (const name of Object.getOwnPropertyNames(ctx)) {
    const v = Object.getOwnPropertyDescriptor(ctx, name)?.value;
    if (!before.has(name) && isFn(v)) found.set(name, v);
  }
  const declared = [...new Set([...source.matchAll(/\b(?:const|let)\s+([A-Za-z_$][\w$]*)/g)].map((m) => m[1]!))].filter((n) => !RESERVED.has(n) && !found.has(n));
  if (declared.length === 0) return found;
  const probe = declared.map((n) => `try { if (typeof ${n} === 'function') o[${JSON.stringify(n)}] = ${n}; } catch {}`).join('\n');
  try {
    const values = new Script(`(() => { const o = Object.create(null);\n${probe}\nreturn o; })()`).runInContext(ctx, { timeout }) as Record<string, unknown>;
    for (const [name, v] of Object.entries(values)) if (isFn(v)) found.set(name, v);
  } catch {
    /* a name that is no binding: nothing found through it */
  }
  return found;
}

/** Run the file's top level in ctx (bounded by timeout ms) and pick its task function. */
export function taskFunction(ctx: Context, source: string, filename: string, entry: string | undefined, timeout: number): TaskFn {
  const before = new Set(Object.getOwnPropertyNames(ctx));
  const { expression, script } = compile(source, filename);
  const completion: unknown = script.runInContext(ctx, { timeout });
  if (expression) {
    if (!isFn(completion)) throw new ShapeError(`${filename} is an expression, not a function`);
    if (entry && completion.name && completion.name !== entry) throw new ShapeError(`entry point "${entry}" not found: ${filename} is one function, named ${completion.name}`);
    return completion;
  }
  const exported = (ctx.module as { exports: unknown }).exports;
  const exportedFns = typeof exported === 'object' && exported !== null ? Object.entries(exported).filter((e): e is [string, TaskFn] => isFn(e[1])) : [];
  const top = topLevelFunctions(ctx, source, before, timeout);
  if (entry) {
    const fn = exportedFns.find(([n]) => n === entry)?.[1] ?? top.get(entry) ?? (isFn(exported) && exported.name === entry ? exported : undefined);
    if (fn) return fn;
    throw new ShapeError(`entry point "${entry}" not found in ${filename}; its functions: ${[...new Set([...exportedFns.map(([n]) => n), ...top.keys()])].join(', ') || 'none'}`);
  }
  if (isFn(exported)) return exported;
  if (exportedFns.length) {
    const fn = exportedFns.find(([n]) => n === 'main')?.[1] ?? (exportedFns.length === 1 ? exportedFns[0]![1] : undefined);
    if (fn) return fn;
    throw new ShapeError(`${filename} exports several functions (${exportedFns.map(([n]) => n).join(', ')}), none named main`);
  }
  const main = top.get('main');
  if (main) return main;
  if (isFn(completion)) return completion;
  if (top.size === 1) return [...top.values()][0]!;
  if (top.size > 1) throw new ShapeError(`${filename} has ${top.size} top-level functions (${[...top.keys()].join(', ')}), none named main and none exported`);
  throw new ShapeError(`${filename} defines no task function: expected "function(input) {...}", a function declaration (main, or the only one), or module.exports`);
}
