#!/usr/bin/env node
// The bin (dist/bundle/pawl.mjs). `pawl --help`, `pawl --version` and `pawl run --server` import
// the CLI's ES modules, which load its argument parsing (and an http client) and nothing else. Every other command runs the same CLI built
// as one CommonJS file and compiled with a V8 code cache (code-cache.ts): node 20 caches no
// compiled ES module, and compiling the run's ~700 KB of code was most of `pawl run`'s load.
// Where the build has no such file (tsc's dist/cli), the ES modules run.
const argv = process.argv.slice(2);
const cmd = argv[0] === '--timings' ? argv[1] : argv[0];
// `pawl run --server` hands the run to a service: its ES modules are the CLI and an http client.
const server = cmd === 'run' && argv.some((a) => a === '--server' || a.startsWith('--server='));
const light = cmd === undefined || server || ['help', '--help', '-h', 'version', '--version'].includes(cmd);
if (light || !(await import('./code-cache.js')).runCachedBundle(cmd)) await import('./main.js');
