// Which block devices the cgroup io limits must name so that they follow the storage a sandbox
// really uses: the rootfs, /workspace and every bind. A pure function of a snapshot (a
// mountinfo text and a sysfs tree: /sys, or a fixture dir in tests), followed through overlay
// layers, device-mapper/md slaves, loop backing files and partitions to the whole disks the io
// controllers accept (the kernel refuses a partition's numbers in io.max and blkio).
import { existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface StorageSnapshot {
  /** A /proc/<pid>/mountinfo text. */
  mountinfo: string;
  /** Root of the sysfs tree to read ("/sys" on a real host). */
  sys: string;
}

export interface IoPlacement {
  /** "MAJ:MIN" of every whole disk (and stacked device) to throttle, deduplicated. */
  devices: string[];
  /** Paths with nothing to throttle, and why (memory, the VM host's disk, no storage at all). */
  notNeeded: string[];
  /** Paths whose storage has no single block device (ZFS, NFS, multi-device btrfs, FUSE): unthrottled. */
  noDevice: string[];
  /** The devices behind each path asked about, by the path as given. */
  byPath: Record<string, string[]>;
}

interface Mount {
  majMin: string;
  mountPoint: string;
  fstype: string;
  source: string;
  superOptions: string;
}

/** Writes land in memory pages, charged to the writer's memory cgroup. */
const MEMORY_FS = new Set(['tmpfs', 'ramfs', 'devtmpfs', 'hugetlbfs']);
/** The I/O is done by a VM's host, outside this kernel's block layer. */
const HOST_SHARED_FS = new Set(['9p', 'virtiofs']);
/** No storage behind them at all. */
const PSEUDO_FS = new Set([
  'proc', 'sysfs', 'cgroup', 'cgroup2', 'devpts', 'mqueue', 'debugfs', 'tracefs', 'securityfs', 'pstore', 'bpf',
  'configfs', 'fusectl', 'nsfs', 'binfmt_misc', 'autofs', 'efivarfs',
]);
const MAX_DEPTH = 8;

/** mountinfo escapes space, tab, newline and backslash (and overlay commas) as \ooo. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));

export function parseMounts(mountinfo: string): Mount[] {
  const out: Mount[] = [];
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 6) continue;
    out.push({ majMin: f[2]!, mountPoint: unescape(f[4]!), fstype: f[sep + 1]!, source: unescape(f[sep + 2] ?? ''), superOptions: f[sep + 3] ?? '' });
  }
  return out;
}

/** The mount a path lives on: the longest mount point above it, the later of equals (stacked on top). */
export function mountOf(mounts: Mount[], path: string): Mount | null {
  let best: Mount | null = null;
  for (const m of mounts) {
    const mp = m.mountPoint;
    if (path !== mp && !path.startsWith(mp === '/' ? '/' : `${mp}/`)) continue;
    if (!best || mp.length >= best.mountPoint.length) best = m;
  }
  return best;
}

/** overlay's layers from its super options (lowerdir a:b:c with "\:" escapes; 6.5+ also lowerdir+=, datadir+=). */
export function overlayLayers(superOptions: string): string[] {
  const layers: string[] = [];
  for (const opt of superOptions.split(',')) {
    const eq = opt.indexOf('=');
    const [key, value] = [opt.slice(0, eq), opt.slice(eq + 1)];
    if (key === 'upperdir' || key === 'lowerdir+' || key === 'datadir+') layers.push(unescape(value));
    else if (key === 'lowerdir') layers.push(...value.split(/(?<!\\):/).map((l) => unescape(l.replace(/\\:/g, ':'))));
  }
  return layers.filter(Boolean);
}

class Resolver {
  /** The devices found for the path being resolved (resolveIoDevices starts each path afresh). */
  devices = new Set<string>();
  readonly notNeeded: string[] = [];
  readonly noDevice: string[] = [];
  private readonly mounts: Mount[];
  constructor(private readonly snap: StorageSnapshot) {
    this.mounts = parseMounts(snap.mountinfo);
  }

  private read(path: string): string | null {
    try {
      return readFileSync(join(this.snap.sys, path), 'utf8').trim();
    } catch {
      return null;
    }
  }

  private list(path: string): string[] {
    try {
      return readdirSync(join(this.snap.sys, path));
    } catch {
      return [];
    }
  }

  /** The devices behind a path; returns whether any was found. `via`: the overlays it was reached through. */
  path(path: string, depth = 0, via: Mount[] = []): boolean {
    const m = mountOf(this.mounts, path);
    if (!m) {
      this.noDevice.push(`${path}: no mount found for it in mountinfo`);
      return false;
    }
    // A layer that resolves back to its own overlay lives outside this mount namespace (a
    // container's or a VM's root made before it switched root): what is under it is unknown here.
    if (via.includes(m)) return this.unthrottled(`${path}: a layer of the overlay at ${m.mountPoint}, not visible in this mount namespace`);
    const on = `${path}: ${m.fstype}`;
    if (MEMORY_FS.has(m.fstype)) return this.none(`${on} (memory: its pages count against the run's memory limit)`);
    if (HOST_SHARED_FS.has(m.fstype)) return this.none(`${on} (the VM's host does the I/O, outside this kernel's block layer)`);
    if (PSEUDO_FS.has(m.fstype)) return this.none(`${on} (no storage behind it)`);
    if (m.fstype === 'overlay') {
      const layers = overlayLayers(m.superOptions);
      if (depth >= MAX_DEPTH || layers.length === 0) return this.unthrottled(`${on} with layers that cannot be followed`);
      let any = false;
      for (const layer of layers) any = this.path(layer, depth + 1, [...via, m]) || any;
      return any;
    }
    if (m.fstype === 'btrfs') return this.btrfs(on, m, depth);
    if (m.majMin.startsWith('0:')) return this.unthrottled(`${on} from ${m.source || 'nowhere'} (no single block device)`);
    return this.block(on, m.majMin, depth);
  }

  private none(why: string): false {
    this.notNeeded.push(why);
    return false;
  }

  private unthrottled(why: string): false {
    this.noDevice.push(why);
    return false;
  }

  // btrfs reports an anonymous st_dev; its devices are listed under /sys/fs/btrfs/<fsid>/devices.
  private btrfs(on: string, m: Mount, depth: number): boolean {
    const name = basename(m.source);
    for (const fsid of this.list('fs/btrfs')) {
      const devs = this.list(`fs/btrfs/${fsid}/devices`);
      if (!devs.includes(name)) continue;
      if (devs.length > 1) return this.unthrottled(`${on} over ${devs.length} devices (${devs.join(', ')}): no single block device`);
      const mm = this.read(`fs/btrfs/${fsid}/devices/${name}/dev`);
      return mm ? this.block(on, mm, depth) : this.unthrottled(`${on}: its device ${name} has no dev number in sysfs`);
    }
    return this.unthrottled(`${on} from ${m.source}: not found under /sys/fs/btrfs`);
  }

  /** A block device: its whole disk, what it is stacked on (dm, md: slaves), a loop's backing file. */
  private block(on: string, majMin: string, depth: number): boolean {
    const disk = this.wholeDisk(majMin);
    if (!disk) return this.unthrottled(`${on} on device ${majMin}, which /sys/dev/block does not list`);
    const loopBacking = this.read(`${disk.dir}/loop/backing_file`);
    if (loopBacking !== null) {
      // A loop device is throttled only where its file's storage is: a loop on tmpfs is memory.
      const backing = loopBacking.replace(/ \(deleted\)$/, '');
      if (depth >= MAX_DEPTH || !this.path(backing, depth + 1)) return false;
      this.devices.add(disk.majMin);
      return true;
    }
    this.devices.add(disk.majMin);
    for (const slave of this.list(`${disk.dir}/slaves`)) {
      const mm = this.read(`${disk.dir}/slaves/${slave}/dev`);
      if (mm && depth < MAX_DEPTH) this.block(on, mm, depth + 1);
    }
    return true;
  }

  /** sysfs dir (relative to the snapshot's root) and number of the whole disk holding majMin. */
  private wholeDisk(majMin: string): { dir: string; majMin: string } | null {
    const link = join(this.snap.sys, 'dev/block', majMin);
    if (!existsSync(link)) return null;
    let dir = realpathSync(link);
    if (existsSync(join(dir, 'partition'))) dir = dirname(dir);
    const rel = dir.slice(realpathSync(this.snap.sys).length + 1);
    const mm = this.read(`${rel}/dev`);
    return mm ? { dir: rel, majMin: mm } : null;
  }
}

/** Pure over the snapshot: the devices to throttle for these (absolute, resolved) host paths. */
export function resolveIoDevices(snap: StorageSnapshot, paths: string[]): IoPlacement {
  const r = new Resolver(snap);
  const byPath: Record<string, string[]> = {};
  for (const p of [...new Set(paths)]) {
    r.devices = new Set();
    r.path(p);
    byPath[p] = [...r.devices];
  }
  return { devices: [...new Set(Object.values(byPath).flat())], notNeeded: [...new Set(r.notNeeded)], noDevice: [...new Set(r.noDevice)], byPath };
}

/** The same, for this process's mounts and the real /sys (paths resolved through links first). */
export async function ioDevicesFor(...paths: string[]): Promise<IoPlacement> {
  const resolved = await Promise.all(paths.map((p) => realpath(p).catch(() => p)));
  const placement = resolveIoDevices({ mountinfo: await readFile('/proc/self/mountinfo', 'utf8'), sys: '/sys' }, resolved);
  return { ...placement, byPath: Object.fromEntries(paths.map((p, i) => [p, placement.byPath[resolved[i]!] ?? []])) };
}
