// How the rootfs appears inside a sandbox. The sandbox's / is an empty tmpfs, remounted
// read-only once set up; these rootfs dirs are bound into it read-only. Keeping / itself a tmpfs
// lets bind mounts land anywhere (bwrap creates their mount points) without a writable image.
export const ROOTFS_MOUNTS = ['/usr', '/etc', '/opt/pawl'] as const;

/** Debian's merged /usr: the dynamic loader is looked up as /lib64/ld-linux-x86-64.so.2. */
export const ROOTFS_SYMLINKS: Record<string, string> = { '/lib': 'usr/lib', '/lib64': 'usr/lib64' };

/** Network mode full: host files bound read-only over the rootfs's (empty) ones, so names resolve
 * as on the host. The rootfs holds each as the mount point (its /etc is read-only). */
export const FULL_NETWORK_FILES = ['/etc/resolv.conf'] as const;
/** Restricted network: where the run's egress proxy socket appears inside the sandbox. */
export const EGRESS_SOCKET = '/run/pawl/egress.sock';
