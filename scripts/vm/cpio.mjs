// A newc ("070701") cpio archive, the format the kernel unpacks as an initramfs. Written here, not
// by a cpio tool, so that device nodes (/dev/console) need no mknod and owners are always root.

/** @typedef {{ name: string, mode: number, data?: Buffer, rdev?: [number, number] }} Entry */

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFCHR = 0o020000;

const hex = (n) => n.toString(16).toUpperCase().padStart(8, '0');
const pad4 = (n) => Buffer.alloc((4 - (n % 4)) % 4);

/** The archive of `entries` (in order; parents before children), with the trailer. */
export function cpio(entries) {
  const parts = [];
  let ino = 1;
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 }]) {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`);
    const [rmaj, rmin] = e.rdev ?? [0, 0];
    const fields = [e.name === 'TRAILER!!!' ? 0 : ino++, e.mode, 0, 0, 1, 0, data.length, 0, 0, rmaj, rmin, name.length, 0];
    const header = Buffer.from(`070701${fields.map(hex).join('')}`);
    parts.push(header, name, pad4(header.length + name.length), data, pad4(data.length));
  }
  return Buffer.concat(parts);
}
