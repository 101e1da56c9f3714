#!/usr/bin/env node
// The bin (dist/bundle/pawl.mjs). `pawl --help` and `pawl --version` import the CLI's ES modules,
// which load its argument parsing and nothing else. Every other command runs the same CLI built
// as one CommonJS file and compiled with a V8 code cache (code-cache.ts): node 20 caches no
// compiled ES module, and compiling the run's ~700 KB of code was most of `pawl run`'s load.
// Where the build has no such file (tsc's dist/cli), the ES modules run.
const argv = process.argv.slice(2);
const cmd = argv[0] === '--timings' ? argv[1] : argv[0];
const light = cmd === undefined || ['help', '--help', '-h', 'version', '--version'].includes(cmd);
if (light || !(await import('./code-cache.js')).runCachedBundle(cmd)) await import('./main.js');
