/*
 * seccomp-loop: the run-time cost of a filter. `seccomp-loop getppid|ioctl N` makes N calls that
 * the filters allow and that do almost nothing in the kernel, and prints the nanoseconds per
 * call measured inside the process (sandbox start-up is not counted).
 *   getppid: allowed whatever its arguments, so the kernel's per-syscall cache of "always
 *            allowed" answers (Linux >= 5.11) skips the filter: the fixed cost of having one.
 *   ioctl:   its decision depends on an argument (TIOCSTI/TIOCLINUX are denied), so the filter
 *            program runs on every call: the cost of the filter itself.
 * Built static by bench/seccomp.mjs; runs inside bwrap with and without --seccomp.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  int use_ioctl = strcmp(argv[1], "ioctl") == 0;
  long n = atol(argv[2]);
  int p[2], on = 1;
  if (pipe(p) != 0) return 1;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) {
    if (use_ioctl) syscall(SYS_ioctl, p[0], FIONBIO, &on);
    else syscall(SYS_getppid);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
  return 0;
}
