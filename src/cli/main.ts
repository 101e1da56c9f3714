#!/usr/bin/env node
// pawl's command line: parses arguments, calls the library, prints. Exit status: 0 the run
// succeeded, 1 it failed, 2 pawl could not run it (usage, config or host problem; one line on stderr).
// Each command imports only what it needs (a dynamic import per command): `pawl --help` loads
// no library code at all, and `pawl run` skips seccomp compilation, the rootfs builder and gc's
// runtimes until a run needs them. PAWL_TIMINGS=1 prints the phases.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PawlError } from '../errors.js';
import { LIMIT_OPTIONS, parseJsonInput, takeBinds, UsageError } from './args.js';
import { OPERATOR_OPTIONS, wantsOperator } from './commands/operator-run.js';
import { err, finish, out, printable, quietOnEpipe } from './output.js';
import { mark, timingsLine, timingsOn } from './timings.js';

const USAGE = `usage:
  pawl run TASK [--input JSON | --input-file FILE] [limits]   run a Ratchet task, print the result JSON
      [--server SOCKET]                                        ... in a running \`pawl serve\` (its warm pool and policy; limits only stricter)
  pawl exec [limits] [--ro-bind SRC DST] [--bind SRC DST] [--result FILE | --result-fd N] -- PROGRAM ARGS...
  pawl test TASK [limits] [--json]                             run the task's tests (tests/*.json, meta.yaml test_cases)
  pawl explain [TASK] [limits] [--json]                        print the plan: cgroup files, rlimits, argv, mounts
  pawl rootfs build | info                                     build or describe the read-only rootfs
  pawl gc [--older-than DURATION] [--force]                    remove what dead runs left behind
  pawl ps                                                      list the sandboxes pawl owns (any runtime)
  pawl serve [--socket PATH] [--listen HOST:PORT --token-file FILE] [--task-root DIR]...  the HTTP JSON API (pawl serve --help)
  pawl seccomp compile --profile FILE --out FILE               compile an OCI/Docker seccomp profile to BPF
  pawl seccomp export --trust LEVEL [--arch ARCH]              print a shipped profile as OCI linux.seccomp JSON
  pawl apparmor profile [limits] [--ro-bind|--bind SRC DST]    print the AppArmor profile generated for the policy
  pawl config check FILE | show FILE --task NAME [--json]      check an operator security.yaml; a task's effective policy and sources
operator: run/test --config FILE (security.yaml: the task's policy and execution mode) --audit-log FILE (JSON lines)
  pawl doctor [--json]                                         what pawl can enforce on this host, with fixes (exit 1: not all)
  pawl --version                                               print pawl's version
timings: PAWL_TIMINGS=1 pawl ... (or pawl --timings CMD ...) prints the phases of the command to stderr
limits: --trust untrusted|limited|trusted|system --memory SIZE --timeout DURATION
        --cpu-time DURATION --cpu PERCENT --pids N --env NAME=VALUE --runtime bwrap|runc|crun
network: --network none|restricted|full --allow-host HOST[:PORT] --allow-port N --block-host HOST
        --dns IP[:PORT] --net-down RATE --net-up RATE --net-connections N --net-over-limit wait|refuse
        --force-full-network (full at trust level untrusted)`;

/** parseArgs with errors turned into one-line usage errors. */
function parse<O extends ParseArgsConfig['options']>(args: string[], options: O, allowPositionals = true) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\s*\n\s*/g, ' '));
  }
}

async function readInput(values: { input?: string; 'input-file'?: string }): Promise<unknown> {
  if (values.input !== undefined && values['input-file'] !== undefined) throw new UsageError('give --input or --input-file, not both');
  if (values.input !== undefined) return parseJsonInput(values.input, '--input');
  if (values['input-file'] !== undefined) {
    const text = await readFile(values['input-file'], 'utf8').catch((e: Error) => {
      throw new UsageError(`cannot read --input-file: ${e.message}`);
    });
    return parseJsonInput(text, values['input-file']);
  }
  return {};
}

/**
 * Start the thread that checks a task's schemas while the command's modules load (its start-up
 * is ~100 ms of its own, on the other core): a small module of its own, loaded before the rest.
 */
const warmSchemaThread = () => void import('../task/schema-thread.js').then((m) => m.warmSchemaThread());

/**
 * A one-shot command parses each of its schemas a few times: zod's JIT (a parser per object
 * schema, compiled with new Function at its first parse) costs it more than it saves (measured:
 * ~100 ms less CPU per `pawl run`). zod reads the setting when a schema is built, so this runs
 * before the command's modules load; `pawl serve`, a long-lived process, keeps the JIT.
 */
const zodJitless = () => import('zod').then(({ z }) => void z.config({ jitless: true }));

function oneTask(positionals: string[], cmd: string): string {
  if (positionals.length !== 1) throw new UsageError(`pawl ${cmd} takes one TASK (a task directory or .js file), got ${positionals.length}`);
  return positionals[0]!;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case 'run': {
      const { values, positionals } = parse(args, { ...LIMIT_OPTIONS, ...OPERATOR_OPTIONS, input: { type: 'string' }, 'input-file': { type: 'string' }, server: { type: 'string' } });
      const task = oneTask(positionals, 'run');
      if (values.server !== undefined) {
        if (wantsOperator(values)) throw new UsageError('--config and --audit-log are the service\'s own with --server');
        const input = await readInput(values);
        const { remoteRun } = await import('./commands/remote-run.js');
        mark('load');
        return remoteRun(values.server, task, input, values);
      }
      warmSchemaThread();
      const [input] = await Promise.all([readInput(values), zodJitless()]);
      if (wantsOperator(values)) {
        const [{ runConfigured }, { formatResult }, { policyFromFlags }] = await Promise.all([import('./commands/operator-run.js'), import('./format.js'), import('./policy-flags.js')]);
        const result = await runConfigured(task, values, input, policyFromFlags(values));
        out(formatResult(result));
        return result.status === 'succeeded' ? 0 : 1;
      }
      const [{ runTask }, { formatResult }, { policyFromFlags }] = await Promise.all([import('../supervisor/run.js'), import('./format.js'), import('./policy-flags.js')]);
      mark('load');
      // After the teardown, whose failure the printed result carries (cleanup_error).
      const result = await runTask(task, { input, trustLevel: values.trust, policy: policyFromFlags(values), awaitCleanup: true });
      out(formatResult(result));
      return result.status === 'succeeded' ? 0 : 1;
    }
    case 'exec': {
      const { rest, binds } = takeBinds(args);
      const sep = rest.indexOf('--');
      if (sep < 0 || sep === rest.length - 1) throw new UsageError('pawl exec needs the program after "--": pawl exec [options] -- PROGRAM ARGS...');
      const { values, positionals } = parse(rest.slice(0, sep), { ...LIMIT_OPTIONS, result: { type: 'string' }, 'result-fd': { type: 'string' } });
      if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" before "--"`);
      await zodJitless();
      const [{ execProgram }, { hostConfig }, { resultTarget, writeResult, abandonResult }, { policyFromFlags }] = await Promise.all([
        import('../supervisor/run.js'), import('../config/host.js'), import('./exec-result.js'), import('./policy-flags.js'),
      ]);
      const target = resultTarget(values, hostConfig().stateDir);
      mark('load');
      const result = await execProgram(rest.slice(sep + 1), {
        trustLevel: values.trust,
        policy: policyFromFlags(values, binds.length ? { binds } : undefined),
        stdin: 'inherit',
        stdout: process.stdout,
        stderr: process.stderr,
      }).catch((e: unknown) => {
        abandonResult(target); // no run, no result: not an earlier run's left in the file
        throw e;
      });
      const json = JSON.stringify({ ...result, stdout: undefined, stderr: undefined }, null, 2);
      await writeResult(target, result.id, json);
      return result.status === 'succeeded' ? 0 : 1;
    }
    case 'test': {
      const { values, positionals } = parse(args, { ...LIMIT_OPTIONS, config: OPERATOR_OPTIONS.config, json: { type: 'boolean' } });
      warmSchemaThread();
      await zodJitless();
      const [{ runTaskTests }, { formatResult }, { testOptions }, { terminalProgress }, { policyFromFlags }] = await Promise.all([
        import('../supervisor/task-tests.js'), import('./format.js'), import('./commands/operator-run.js'), import('./progress.js'), import('./policy-flags.js'),
      ]);
      const task = oneTask(positionals, 'test');
      const progress = terminalProgress(); // stderr, only on a terminal
      const report = await runTaskTests(task, { ...(await testOptions(task, values, policyFromFlags(values))), awaitCleanup: true, onProgress: progress.update }).finally(() => progress.done());
      if (values.json) out(formatResult(report));
      else {
        for (const c of report.cases) out(printable(`${c.passed ? 'PASS' : 'FAIL'} ${c.name}${c.passed ? '' : `: ${c.reason}`}`));
        out(`${report.passed} passed, ${report.failed} failed`);
      }
      return report.failed === 0 && report.cases.length > 0 ? 0 : 1;
    }
    case 'explain': {
      const { values, positionals } = parse(args, { ...LIMIT_OPTIONS, json: { type: 'boolean' } });
      if (positionals.length > 1) throw new UsageError('pawl explain takes at most one TASK');
      await zodJitless();
      const [{ loadTask }, { taskPolicy }, { resolvePolicy }, { explain }, { formatExplanation }, { formatReading }, { policyFromFlags }] = await Promise.all([
        import('../task/load.js'), import('../supervisor/run.js'), import('../config/resolve.js'), import('../supervisor/explain.js'), import('./format.js'),
        import('../task/metadata.js'), import('./policy-flags.js'),
      ]);
      const overrides = policyFromFlags(values);
      const task = positionals[0] ? await loadTask(positionals[0]) : null;
      const policy = task ? taskPolicy(task, { trustLevel: values.trust, policy: overrides }) : resolvePolicy({ trustLevel: values.trust, overrides });
      const plan = await explain(policy);
      // How the task's own metadata fields were read (before the trust level clamps them).
      if (values.json) out(JSON.stringify(task ? { ...plan, task: { readings: task.readings } } : plan, null, 2));
      else out(`${task?.readings.length ? `task metadata:\n${task.readings.map((r) => `  ${printable(formatReading(r))}`).join('\n')}\n\n` : ''}${formatExplanation(plan)}`);
      // runc/crun: the bundle's config.json, as written for each run (ID: the run's id).
      if (!values.json && plan.ociConfig) out(`\nconfig.json (${policy.runtime}):\n${JSON.stringify(plan.ociConfig, null, 2)}`);
      return 0;
    }
    case 'rootfs': {
      const [sub, ...more] = args;
      if (more.length || (sub !== 'build' && sub !== 'info')) throw new UsageError('usage: pawl rootfs build | info');
      const [{ hostConfig }, { ensureRootfs, rootfsInfo }] = await Promise.all([import('../config/host.js'), import('../rootfs/index.js')]);
      if (sub === 'build') {
        const progress = (await import('./progress.js')).terminalProgress(); // stderr, only on a terminal
        const r = await ensureRootfs(hostConfig(), { rebuild: true, onProgress: progress.update }).finally(() => progress.done());
        out(`built ${r.path}`);
      } else {
        const info = await rootfsInfo(hostConfig());
        out(`path   ${info.path}\nhash   ${info.hash}\nbytes  ${info.bytes}\nfiles`);
        for (const f of info.files) out(`  ${f.dest}  (${f.bytes} bytes, from ${f.source})`);
      }
      return 0;
    }
    case 'seccomp': {
      const [sub, ...more] = args;
      const [{ compileProfileFile, exportOci }, { TrustLevel }] = await Promise.all([import('../seccomp/index.js'), import('../config/policy.js')]);
      if (sub === 'compile') {
        const { values, positionals } = parse(more, { profile: { type: 'string' }, out: { type: 'string' } });
        if (positionals.length || !values.profile || !values.out) throw new UsageError('usage: pawl seccomp compile --profile FILE --out FILE');
        const bpf = await compileProfileFile(values.profile);
        await writeFile(values.out, bpf);
        out(`wrote ${bpf.length / 8} BPF instructions (${bpf.length} bytes) to ${values.out}`);
        return 0;
      }
      if (sub === 'export') {
        const { values, positionals } = parse(more, { trust: { type: 'string' }, arch: { type: 'string' } });
        const level = TrustLevel.safeParse(values.trust);
        if (positionals.length || !level.success) throw new UsageError(`usage: pawl seccomp export --trust ${TrustLevel.options.join('|')} [--arch x86_64|aarch64]`);
        if (values.arch !== undefined && values.arch !== 'x86_64' && values.arch !== 'aarch64') throw new UsageError(`--arch must be x86_64 or aarch64, got "${values.arch}"`);
        out(JSON.stringify(exportOci(level.data, values.arch as 'x86_64' | 'aarch64' | undefined), null, 2));
        return 0;
      }
      throw new UsageError('usage: pawl seccomp compile --profile FILE --out FILE | pawl seccomp export --trust LEVEL');
    }
    case 'apparmor': {
      const { rest, binds } = takeBinds(args);
      const [sub, ...more] = rest;
      const { values, positionals } = parse(more, LIMIT_OPTIONS);
      if (sub !== 'profile' || positionals.length) throw new UsageError('usage: pawl apparmor profile [limits] [--ro-bind SRC DST] [--bind SRC DST]');
      const [{ resolvePolicy }, { apparmorProfile }, { policyFromFlags }] = await Promise.all([import('../config/resolve.js'), import('../lsm/apparmor/index.js'), import('./policy-flags.js')]);
      out(apparmorProfile(resolvePolicy({ trustLevel: values.trust, overrides: policyFromFlags(values, binds.length ? { binds } : undefined) })).text);
      return 0;
    }
    case 'config':
      return (await import('./commands/config.js')).configCommand(args);
    case 'doctor':
      return (await import('./commands/doctor.js')).doctorCommand(args);
    case 'gc': {
      const { values, positionals } = parse(args, { 'older-than': { type: 'string' }, force: { type: 'boolean' } });
      if (positionals.length) throw new UsageError('pawl gc takes no arguments besides --older-than and --force');
      const [{ parseDuration }, { hostConfig }, { collectGarbage }] = await Promise.all([
        import('../config/units.js'), import('../config/host.js'), import('../supervisor/gc.js'),
      ]);
      let olderThanMs: number | undefined;
      if (values['older-than'] !== undefined) {
        try {
          olderThanMs = parseDuration(values['older-than'], Infinity); // an age, not a timer
        } catch (e) {
          throw new UsageError(`--older-than: ${(e as Error).message}`);
        }
      }
      const report = await collectGarbage(hostConfig(), { olderThanMs, force: values.force === true });
      out(`removed ${report.containers.length} container(s), ${report.cgroups.length} cgroup(s), ${report.scratch.length} scratch dir(s)`);
      for (const n of [...report.containers, ...report.cgroups, ...report.scratch]) out(`  ${n}`);
      // pino only for the commands that log: `pawl --help` should not load it.
      const { log } = await import('../util/log.js');
      for (const id of report.skipped) log().warn({ run: id }, `gc left this run alone: ${report.skippedWhy[id] ?? 'its supervisor cannot be judged from here'}`);
      for (const e of report.errors) log().warn({ what: e }, 'gc could not remove this');
      return report.errors.length ? 1 : 0;
    }
    case 'ps': {
      const { positionals } = parse(args, {});
      if (positionals.length) throw new UsageError('pawl ps takes no arguments');
      const [{ hostConfig }, { listSandboxes }] = await Promise.all([import('../config/host.js'), import('../runtime/index.js')]);
      out('ID  RUNTIME  STATE  AGE  OWNER');
      for (const s of await listSandboxes(hostConfig())) out(`${s.id}  ${s.runtime}  ${s.state}  ${Math.round(s.ageMs / 1000)}s  ${s.owner ?? '-'}`);
      return 0;
    }
    case 'serve':
      return (await import('./commands/serve.js')).serveCommand(args);
    case '--version':
    case 'version': {
      // dist/cli/main.js and dist/bundle/pawl.mjs are both two levels below the package.
      const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
      out(`pawl ${version}`);
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      out(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${cmd}"\n${USAGE}`);
  }
}

quietOnEpipe(process.stdout);
quietOnEpipe(process.stderr);
const argv = process.argv.slice(2);
if (argv[0] === '--timings') argv.shift();
mark('main');
main(argv).then(
  (code) => done(code),
  (e: unknown) => {
    if (e instanceof PawlError) err(printable(`pawl: ${e.message}`, { newlines: true }));
    else {
      err(printable(`pawl: internal error: ${(e as Error)?.message ?? String(e)}`, { newlines: true }));
      return import('../util/log.js').then(({ log }) => {
        log().debug({ err: e }, 'internal error'); // the stack, with PAWL_LOG_LEVEL=debug
        return done(2);
      });
    }
    return done(2);
  },
);

function done(code: number): Promise<never> {
  mark('run');
  if (timingsOn) err(timingsLine());
  return finish(code);
}
