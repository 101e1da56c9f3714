// `npm test` after the build: the host suite (vitest) and the cgroup v2 VM suite (npm run test:vm)
// at the same time. The VM is mostly emulation on its own threads and the host suite waits on
// sandboxes much of its time, so together they take far less than one after the other. Each
// line is prefixed with its suite; the exit status is 1 when either failed. Ends with the wall
// time of each.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const suites = [
  { name: 'host', argv: [process.execPath, 'node_modules/vitest/vitest.mjs', 'run'] },
  { name: 'vm', argv: ['npm', 'run', '--silent', 'test:vm'] },
];
const t0 = performance.now();

function run({ name, argv }) {
  return new Promise((resolve) => {
    const start = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => process.stdout.write(`[${name}] ${line}\n`));
    }
    child.on('close', (code, signal) => resolve({ name, ok: code === 0, how: signal ?? `exit ${code}`, s: (performance.now() - start) / 1000 }));
  });
}

const results = await Promise.all(suites.map(run));
console.log(`# npm test: ${((performance.now() - t0) / 1000).toFixed(1)} s after the build`);
for (const r of results) console.log(`#   ${r.name.padEnd(5)} ${r.s.toFixed(1).padStart(7)} s  ${r.ok ? 'ok' : `FAILED (${r.how})`}`);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
