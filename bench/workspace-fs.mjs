// bench/workspace-fs.mjs: what /workspace's own filesystem costs per run (root; npm run build
// first). Alternating rounds, median ms: a tmpfs mounted with mount(2) (the option not taken:
// its pages count as the run's memory) against pawl's ext4 image (src/supervisor/workspace-fs.ts:
// the first run of a shape runs mkfs.ext4; later ones write its few hundred KB into a sparse
// file, then loop attach + mount and unmount are system calls).
import { mkdirSync, rmSync } from 'node:fs';
import koffi from 'koffi';
import { resolvePolicy } from '../dist/config/resolve.js';
import { unmount } from '../dist/fs/loop-mount.js';
import { mountWorkspace, unmountWorkspace } from '../dist/supervisor/workspace-fs.js';

const mount = koffi.load('libc.so.6').func('int mount(const char *, const char *, const char *, unsigned long, const char *)');
const dir = `/var/lib/pawl/bench-workspace-${process.pid}`;
const ws = `${dir}/workspace`;
mkdirSync(ws, { recursive: true });
const policy = resolvePolicy();
const N = Number(process.argv[2] ?? 20);
const t = { tmpfsMount: [], tmpfsUnmount: [], imageAndMount: [], unmount: [] };
const now = () => performance.now();
let a = now();
await mountWorkspace(dir, ws, policy, 0);
const first = now() - a;
await unmountWorkspace(ws);
rmSync(`${dir}/workspace.img`);
for (let i = 0; i < N; i++) {
  a = now();
  if (mount('tmpfs', ws, 'tmpfs', 6, `size=${policy.resources.diskSpace},nr_inodes=${policy.resources.diskInodes},mode=0700`) < 0) throw new Error('mount');
  let b = now();
  unmount(ws);
  t.tmpfsMount.push(b - a);
  t.tmpfsUnmount.push(now() - b);
  a = now();
  await mountWorkspace(dir, ws, policy, 0);
  b = now();
  await unmountWorkspace(ws);
  t.imageAndMount.push(b - a);
  t.unmount.push(now() - b);
  rmSync(`${dir}/workspace.img`);
}
rmSync(dir, { recursive: true });
const med = (xs) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)].toFixed(1);
console.log(`first ext4 image of a shape (mkfs.ext4): ${first.toFixed(1)} ms; medians of ${N}: ${Object.entries(t).map(([k, v]) => `${k} ${med(v)}`).join(', ')} ms (load ${(await import('node:os')).loadavg()[0].toFixed(1)})`);
