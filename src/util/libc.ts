// The few libc calls node has no API for, through koffi (already used for libseccomp): fd flags,
// fd-relative open/unlink (removal that never follows a link), the reaper's prctl/waitpid, and
// the loop device and mount calls of /workspace's filesystem (fs/loop-mount.ts).
// Loaded on first use; errno is read right after the failing call. The one libc binding (the
// layering check allows koffi only here and in seccomp/libseccomp.ts).
// The audit netlink socket (seccomp/audit-netlink.ts), Landlock's ABI query (doctor) and the bwrap shim's rlimits (prlimit) too.
import koffi from 'koffi';
import { constants } from 'node:os';

export interface Libc {
  fcntl(fd: number, cmd: number, arg: number): number;
  openat(dirfd: number, path: string, flags: number): number;
  unlinkat(dirfd: number, path: string, flags: number): number;
  close(fd: number): number;
  prctl(option: number, a: number, b: number, c: number, d: number): number;
  waitpid(pid: number, status: number[], options: number): number;
  lseek(fd: number, offset: bigint, whence: number): bigint;
  ioctl(fd: number, req: number, arg: Buffer | null): number;
  mount(src: string, target: string, fstype: string, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  posix_fadvise(fd: number, offset: bigint, len: bigint, advice: number): number;
  /**
   * Every page of the file on fd (size bytes) is in the page cache (cachestat, or mmap + mincore);
   * false also when that cannot be told. Pages still being read in may count: ask before a readahead.
   */
  allResident(fd: number, size: number): boolean;
  memfd_create(name: string, flags: number): number;
  syscall3(nr: number, a: Buffer | null, b: number, c: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  /** prlimit(pid, resource, new, old): `limit` is a struct rlimit (soft, hard: two u64), `old` null. */
  prlimit(pid: number, resource: number, limit: Buffer, old: null): number;
  /** pidfd_open(pid, 0) (Linux 5.3): an fd that names this very process, never a later one with its pid; -1 on failure. */
  pidfdOpen(pid: number): number;
  /** pidfd_send_signal(fd, SIGKILL, NULL, 0): 0, or -1 and errno (ESRCH once it has been reaped). */
  pidfdKill(fd: number): number;
  /** mount_setattr(AT_FDCWD, path, flags, attr, attr.length) (Linux 5.12): -1 and errno on failure. */
  mountSetattr(path: string, flags: number, attr: Buffer): number;
  /** syncfs(fd) on one of libuv's threads: it may sleep for as long as the filesystem's writeback takes. */
  syncfsAsync(fd: number): Promise<number>;
  /**
   * umount2 and mount on one of libuv's threads: unmounting writes back and detaches the loop
   * device, mounting reads the superblock through it (measured: 25-40 ms each on a busy host,
   * the supervisor's event loop stopped meanwhile). -1 on failure; errno stays on that thread.
   */
  umount2Async(target: string, flags: number): Promise<number>;
  mountAsync(src: string, target: string, fstype: string, flags: number, data: string | null): Promise<number>;
  /** socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): both ends, or null (errno set). */
  socketpair(): [number, number] | null;
  /**
   * posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK), no copy of this process's page tables) of
   * `file` with `argv` and `env`, its fds made by `dup2` ([parent fd, child fd]) and /dev/null on
   * `devNull`, every signal at its default and none blocked. The pid, or -errno (of the spawn, or
   * of an action it refused to record: EBADF for a number past RLIMIT_NOFILE, ENOMEM).
   */
  spawn(file: string, argv: string[], env: string[], dup2: [number, number][], devNull: number[]): number;
}

export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const O_NONBLOCK = 0o4000;
export const FD_CLOEXEC = 1;
export const AT_REMOVEDIR = 0x200;
export const AT_FDCWD = -100;

let libc: Libc | null = null;

export function loadLibc(): Libc {
  if (!libc) {
    const lib = koffi.load('libc.so.6');
    const syncfs = lib.func('int syncfs(int)');
    const umount2 = lib.func('int umount2(const char *, int)');
    const mount = lib.func('int mount(const char *, const char *, const char *, unsigned long, const char *)');
    const mmap = lib.func('void *mmap(void *, size_t, int, int, int, int64_t)');
    const munmap = lib.func('int munmap(void *, size_t)');
    const mincore = lib.func('int mincore(void *, size_t, _Out_ uint8_t *)');
    const pageSize = Number(lib.func('long sysconf(int)')(30)); // _SC_PAGESIZE
    const [PROT_READ, MAP_SHARED] = [1, 1];
    const cachestat = lib.func('long syscall(long, int, void *, void *, unsigned int)');
    // x86_64 and aarch64 share the generic number (new syscalls are numbered alike on both).
    const SYS_cachestat = 451;
    let hasCachestat = process.arch === 'x64' || process.arch === 'arm64';
    const pidfdCall = lib.func('long syscall(long, int, int, void *, unsigned int)');
    const [SYS_pidfd_send_signal, SYS_pidfd_open, SIGKILL] = [424, 434, 9]; // generic numbers, as above
    const mountSetattr = lib.func('long syscall(long, int, const char *, unsigned int, void *, size_t)');
    const SYS_mount_setattr = 442; // generic: x86_64 and aarch64 alike
    const socketpair = lib.func('int socketpair(int, int, int, _Out_ int *)');
    const [AF_UNIX, SOCK_STREAM, SOCK_CLOEXEC, O_RDWR] = [1, 1, 0o2000000, 2];
    const [POSIX_SPAWN_SETSIGDEF, POSIX_SPAWN_SETSIGMASK] = [0x04, 0x08];
    const posixSpawn = lib.func('int posix_spawn(_Out_ int *, const char *, void *, void *, const char **, const char **)');
    const fa = {
      init: lib.func('int posix_spawn_file_actions_init(void *)'),
      adddup2: lib.func('int posix_spawn_file_actions_adddup2(void *, int, int)'),
      addopen: lib.func('int posix_spawn_file_actions_addopen(void *, int, const char *, int, unsigned int)'),
      addclose: lib.func('int posix_spawn_file_actions_addclose(void *, int)'),
      destroy: lib.func('int posix_spawn_file_actions_destroy(void *)'),
    };
    const spawnattr = {
      init: lib.func('int posix_spawnattr_init(void *)'),
      setflags: lib.func('int posix_spawnattr_setflags(void *, short)'),
      setsigdefault: lib.func('int posix_spawnattr_setsigdefault(void *, const void *)'),
      setsigmask: lib.func('int posix_spawnattr_setsigmask(void *, const void *)'),
      destroy: lib.func('int posix_spawnattr_destroy(void *)'),
    };
    const sigfillset = lib.func('int sigfillset(void *)');
    const sigemptyset = lib.func('int sigemptyset(void *)');
    const onThread = (f: { async: (...a: unknown[]) => void }, ...args: unknown[]) =>
      new Promise<number>((resolve, reject) => f.async(...args, (err: unknown, r: number) => (err ? reject(err) : resolve(r))));
    libc = {
      // fcntl and openat are variadic in C; every call here passes exactly these int arguments.
      fcntl: lib.func('int fcntl(int, int, int)'),
      openat: lib.func('int openat(int, const char *, int)'),
      unlinkat: lib.func('int unlinkat(int, const char *, int)'),
      close: lib.func('int close(int)'),
      prctl: lib.func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)'),
      waitpid: lib.func('int waitpid(int, _Out_ int *, int)'),
      lseek: lib.func('int64_t lseek(int, int64_t, int)'),
      ioctl: lib.func('int ioctl(int, unsigned long, void *)'),
      mount,
      umount2,
      posix_fadvise: lib.func('int posix_fadvise(int, int64_t, int64_t, int)'),
      allResident: (fd, size) => {
        if (size === 0) return true;
        // cachestat(2) (Linux 6.5) counts the file's cached pages in one call: measured 0.2 ms
        // for node's 94 MB where mmap + mincore took 1.8-3.6 ms, on every run. Older kernels: mincore.
        // It also counts pages still being read in (mincore does not): ask before any readahead.
        if (hasCachestat) {
          const range = Buffer.alloc(16); // off 0, len 0: to the end of the file
          const stat = Buffer.alloc(40);
          if (cachestat(SYS_cachestat, fd, range, stat, 0) === 0) return stat.readBigUInt64LE(0) >= BigInt(Math.ceil(size / pageSize));
          // Not there, or refused (a seccomp filter or an LSM): mincore from now on.
          hasCachestat = false;
        }
        const addr = mmap(null, size, PROT_READ, MAP_SHARED, fd, 0);
        if (koffi.address(addr) === 0xffffffffffffffffn) return false; // MAP_FAILED
        try {
          const vec = Buffer.alloc(Math.ceil(size / pageSize));
          return mincore(addr, size, vec) === 0 && vec.every((b) => (b & 1) === 1);
        } finally {
          munmap(addr, size);
        }
      },
      memfd_create: lib.func('int memfd_create(const char *, unsigned int)'),
      syscall3: lib.func('long syscall(long, void *, size_t, uint32_t)'),
      // The audit netlink listener (seccomp/audit-netlink.ts): node has no netlink sockets.
      socket: lib.func('int socket(int, int, int)'),
      bind: lib.func('int bind(int, const void *, uint32_t)'),
      recv: lib.func('long recv(int, void *, size_t, int)'),
      send: lib.func('long send(int, const void *, size_t, int)'),
      setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)'),
      prlimit: lib.func('int prlimit(int, int, const void *, void *)'),
      pidfdOpen: (pid) => Number(pidfdCall(SYS_pidfd_open, pid, 0, null, 0)),
      pidfdKill: (fd) => Number(pidfdCall(SYS_pidfd_send_signal, fd, SIGKILL, null, 0)),
      mountSetattr: (path, flags, attr) => Number(mountSetattr(SYS_mount_setattr, AT_FDCWD, path, flags, attr, attr.length)),
      syncfsAsync: (fd: number) =>
        new Promise<number>((resolve, reject) => syncfs.async(fd, (err: unknown, r: number) => (err ? reject(err) : resolve(r)))),
      umount2Async: (target, flags) => onThread(umount2, target, flags),
      mountAsync: (src, target, fstype, flags, data) => onThread(mount, src, target, fstype, flags, data),
      socketpair: () => {
        const fds = new Int32Array(2);
        return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) === 0 ? [fds[0]!, fds[1]!] : null;
      },
      spawn: (file, argv, env, dup2, devNull) => {
        // glibc's structs, opaque here: sizes 80 and 336 on x86_64 and aarch64, room to spare.
        const actions = Buffer.alloc(256);
        const attr = Buffer.alloc(1024);
        const sigs = Buffer.alloc(128);
        fa.init(actions);
        spawnattr.init(attr);
        try {
          // Each source first to a number above every fd named, then into place: a source that
          // is also another's target (the parent's fd 4 given as the child's fd 3) is not lost.
          const high = Math.max(2, ...dup2.flat()) + 1;
          // Each call only records an action; one refused would be a child with the wrong fds.
          const setUp = [
            ...dup2.map(([from], i) => () => fa.adddup2(actions, from, high + i)),
            ...devNull.map((fd) => () => fa.addopen(actions, fd, '/dev/null', O_RDWR, 0)),
            ...dup2.map(([, to], i) => () => fa.adddup2(actions, high + i, to)),
            ...dup2.map((_, i) => () => fa.addclose(actions, high + i)),
            // What libuv's spawn does too: the child starts with no signal ignored or blocked.
            () => sigfillset(sigs) || spawnattr.setsigdefault(attr, sigs),
            () => sigemptyset(sigs) || spawnattr.setsigmask(attr, sigs),
            () => spawnattr.setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK),
          ];
          for (const step of setUp) {
            const rc = step();
            if (rc !== 0) return -(rc > 0 ? rc : koffi.errno()); // sigfillset/sigemptyset: -1 and errno
          }
          const pid = [0];
          const rc = posixSpawn(pid, file, actions, attr, [...argv, null], [...env, null]);
          return rc === 0 ? pid[0]! : -rc;
        } finally {
          fa.destroy(actions);
          spawnattr.destroy(attr);
        }
      },
    };
  }
  return libc;
}

/** errno of the last failed call, as a number. */
export function lastErrno(): number {
  return koffi.errno();
}

/** errno of the last failed call, as node's code name ("ELOOP"). */
export function errnoCode(): string {
  return errnoName(koffi.errno());
}

/** An errno number as node's code name ("ENOENT"). */
export function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));
