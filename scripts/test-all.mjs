// `npm test` after the build: the host suite (vitest) and the cgroup v2 VM suite (npm run test:vm)
// at the same time. The VM is mostly emulation on its own threads and the host suite waits on
// sandboxes much of its time, so together they take far less than one after the other. Each
// line is prefixed with its suite; the exit status is 1 when either failed. Ends with each failed
// test's report again (the two suites' output interleaves, and a CI log is often read from its
// tail) and the wall time of each suite.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * The failure reports of a stream of test output, in its two formats: node's TAP (each `not ok`
 * with the `#` diagnostics just before it and its YAML block after) and vitest's `Failed Tests`
 * section. Lines keep their per-file prefix (`[attacks] `); at most MAX are kept.
 */
class FailureReports {
  static MAX = 400;
  #out = [];
  #recent = [];
  /** The TAP report being read (`not ok` to `...`), or null. */
  #tap = null;
  #inVitest = false;

  see(raw) {
    const line = raw.replace(/\x1b\[[0-9;]*m/g, '');
    const body = line.replace(/^(\[[\w-]+\] )*/, '');
    if (this.#tap) {
      this.#tap.push(line);
      if (/^\s*\.\.\.$/.test(body)) {
        // A test cancelled because its parent failed says nothing more than its name.
        const block = this.#tap.some((l) => /failureType: 'cancelledByParent'/.test(l)) ? this.#tap.slice(0, 1) : this.#tap;
        block.forEach((l) => this.#keep(l));
        this.#tap = null;
      }
    } else if (/^\s*not ok \d+ /.test(body)) {
      this.#recent.forEach((l) => this.#keep(l));
      this.#tap = [line];
    } else if (/Failed Tests \d+/.test(body)) {
      this.#inVitest = true;
    } else if (this.#inVitest && /^\s*Test Files /.test(body)) {
      this.#inVitest = false;
    }
    if (this.#inVitest) this.#keep(line);
    // The diagnostics (`t.diagnostic`) a failing TAP test printed just before its `not ok`.
    if (/^\s*# (?!Subtest:)/.test(body)) this.#recent = [...this.#recent, line].slice(-8);
    else if (/^\s*(ok|not ok) \d+ |^\s*# Subtest:/.test(body)) this.#recent = [];
  }

  #keep(line) {
    if (this.#out.length < FailureReports.MAX) this.#out.push(line);
  }

  lines() {
    return this.#out.length ? this.#out : ['(no test report found: see the lines above)'];
  }
}

const suites = [
  { name: 'host', argv: [process.execPath, 'node_modules/vitest/vitest.mjs', 'run'] },
  { name: 'vm', argv: ['npm', 'run', '--silent', 'test:vm'] },
];
const t0 = performance.now();

function run({ name, argv }) {
  return new Promise((resolve) => {
    const start = performance.now();
    const failures = new FailureReports();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        process.stdout.write(`[${name}] ${line}\n`);
        failures.see(line);
      });
    }
    child.on('close', (code, signal) => resolve({ name, ok: code === 0, how: signal ?? `exit ${code}`, s: (performance.now() - start) / 1000, failures }));
  });
}

const results = await Promise.all(suites.map(run));
for (const r of results.filter((r) => !r.ok)) {
  console.log(`# ${r.name}: what failed (repeated from above)`);
  for (const line of r.failures.lines()) console.log(`[${r.name}] ${line}`);
}
console.log(`# npm test: ${((performance.now() - t0) / 1000).toFixed(1)} s after the build`);
for (const r of results) console.log(`#   ${r.name.padEnd(5)} ${r.s.toFixed(1).padStart(7)} s  ${r.ok ? 'ok' : `FAILED (${r.how})`}`);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
