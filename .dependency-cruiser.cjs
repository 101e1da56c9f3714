// The layering rule (npm run lint:layers, run by .ci/run and npm test). Lowest first:
//   base      src/util/, src/errors.ts            - imports nothing of pawl's
//   policy    src/config/ (+ the network policy's pure parts: network/{schema,hosts,address}.ts)
//   hostfacts hostfacts/                          - the facts cache, host capabilities, the degrade step, process liveness
//   host      cgroup/, seccomp/, lsm/, rootfs/, network/ - mechanisms, each a library
//   plan      plan/                               - pure: policy + host facts -> the SandboxPlan every backend renders
//   run       runtime/ (below supervisor/), supervisor/, task/, pool/, cli/, index.ts
// A layer imports only layers below it (and itself); no module is part of an import circle.
// There are no known exceptions: a new violation fails the check (fix it, do not list it).
const BASE = '^src/(util/|errors[.]ts$)';
const POLICY = '^src/(config/|network/(schema|hosts|address)[.]ts$)';
const HOST = '^src/(hostfacts|cgroup|seccomp|lsm|rootfs|network)/';
const PLAN = '^src/plan/';
const RUN = '^src/(runtime/|supervisor/|task/|pool/|cli/|index[.]ts$)';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle: no one can say which of its modules is lower. Move the shared type or schema down.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'base-imports-nothing',
      severity: 'error',
      comment: 'util/ and errors.ts are the bottom layer: they import nothing of pawl\'s above them.',
      from: { path: BASE },
      to: { path: '^src/', pathNot: BASE },
    },
    {
      name: 'policy-below-host',
      severity: 'error',
      comment: 'The policy (config/) is read by every layer; it may import only util/ and errors.ts.',
      from: { path: POLICY },
      to: { path: '^src/', pathNot: `${POLICY}|${BASE}` },
    },
    {
      name: 'hostfacts-below-mechanisms',
      severity: 'error',
      comment: 'hostfacts/ (the facts cache, host capabilities, the degrade step) is what cgroup/, seccomp/ and the rest build on.',
      from: { path: '^src/hostfacts/' },
      to: { path: '^src/', pathNot: `^src/hostfacts/|${POLICY}|${BASE}` },
    },
    {
      name: 'host-below-run',
      severity: 'error',
      comment: 'Host mechanisms (cgroup, seccomp, hostfacts, ...) never import the plan, the runtimes, the run, the pool or the CLI.',
      from: { path: HOST },
      to: { path: `${PLAN}|${RUN}` },
    },
    {
      name: 'plan-below-run',
      severity: 'error',
      comment: 'The plan is pure: it never imports a runtime, the run (supervisor/), task/, the pool or the CLI.',
      from: { path: PLAN },
      to: { path: RUN },
    },
    {
      name: 'runtime-below-supervisor',
      severity: 'error',
      comment: 'A runtime backend never imports the supervisor (the run names no backend, no backend names the run).',
      from: { path: '^src/runtime/' },
      to: { path: '^src/supervisor/' },
    },
    {
      name: 'task-below-supervisor',
      severity: 'error',
      comment: 'task/ (loading, the harness, the protocol) is below the supervisor that runs it.',
      from: { path: '^src/task/' },
      to: { path: '^src/(supervisor|runtime|pool|cli)/' },
    },
    {
      name: 'one-libc-binding',
      severity: 'error',
      comment: 'koffi loads libc in util/libc.ts and libseccomp in seccomp/libseccomp.ts, nowhere else.',
      from: { path: '^src/', pathNot: '^src/(util/libc|seccomp/libseccomp)[.]ts$' },
      to: { path: '^node_modules/koffi/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts'] },
  },
};
