// How the rootfs appears inside a sandbox. The sandbox's / is an empty tmpfs, remounted
// read-only once set up; the rootfs dirs (ROOTFS_MOUNTS) are bound into it read-only. Keeping /
// itself a tmpfs lets bind mounts land anywhere (bwrap creates their mount points) without a
// writable image. The dirs and links are the policy's to know too (what a mount may not cover).
export { ROOTFS_MOUNTS, ROOTFS_SYMLINKS } from '../config/filesystem.js';

/** Network mode full: host files bound read-only over the rootfs's (empty) ones, so names resolve
 * as on the host. The rootfs holds each as the mount point (its /etc is read-only). */
export const FULL_NETWORK_FILES = ['/etc/resolv.conf'] as const;
/** Restricted network: where the run's egress proxy socket appears inside the sandbox. */
export const EGRESS_SOCKET = '/run/pawl/egress.sock';
