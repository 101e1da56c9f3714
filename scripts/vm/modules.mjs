// The kernel modules the guest loads with insmod, with their dependencies first, taken from the
// kernel package's lib/modules/<version> (a module's own "depends=" modinfo field names them).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

// crc32c_generic: ext4 and jbd2 want the crc32c hash (a soft dependency modinfo does not force).
// loop: /workspace is a loop-mounted ext4 image (src/supervisor/workspace-fs.ts).
export const GUEST_MODULES = [
  'virtio_ring', 'virtio', 'virtio_mmio', 'virtio_blk', '9pnet', '9pnet_virtio', 'netfs', 'fscache', '9p',
  'overlay', 'crc32c_generic', 'crc16', 'mbcache', 'jbd2', 'ext4', 'loop',
];

const norm = (name) => name.replaceAll('-', '_');

function walk(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** A module file's bytes, decompressed. */
function moduleBytes(path) {
  if (path.endsWith('.ko')) return readFileSync(path);
  const tool = path.endsWith('.xz') ? ['xz', '-dc'] : path.endsWith('.gz') ? ['gzip', '-dc'] : path.endsWith('.zst') ? ['zstd', '-qdc'] : null;
  if (!tool) throw new Error(`cannot handle ${path}`);
  return execFileSync(tool[0], [...tool.slice(1), path], { maxBuffer: 256 * 1024 * 1024 });
}

/** The "depends=a,b" field of a module's .modinfo section. */
function depends(ko) {
  const at = ko.indexOf('\0depends=');
  if (at < 0) return [];
  const end = ko.indexOf(0, at + 1);
  return ko.toString('latin1', at + 9, end).split(',').filter(Boolean);
}

/**
 * [{ name, bytes }] in load order for `wanted` (built-in modules are skipped), from the unpacked
 * lib/modules/<version> directory.
 */
export function resolveModules(modulesDir, wanted = GUEST_MODULES) {
  const files = new Map();
  for (const f of walk(join(modulesDir, 'kernel'))) {
    const m = /([^/]+)\.ko(\.(xz|gz|zst))?$/.exec(f);
    if (m) files.set(norm(m[1]), f);
  }
  const builtin = new Set(readFileSync(join(modulesDir, 'modules.builtin'), 'utf8').split('\n').filter(Boolean)
    .map((l) => norm(l.replace(/^.*\//, '').replace(/\.ko$/, ''))));
  const seen = new Set();
  const order = [];
  const add = (raw) => {
    const name = norm(raw);
    if (seen.has(name)) return;
    seen.add(name);
    if (builtin.has(name)) return;
    const file = files.get(name);
    if (!file) throw new Error(`module ${name} is in neither the kernel package nor modules.builtin`);
    const bytes = moduleBytes(file);
    for (const d of depends(bytes)) add(d);
    order.push({ name, bytes });
  };
  for (const m of wanted) add(m);
  return order;
}
