/*
 * seccomp-loop: the run-time cost of a filter. Calls getppid N times (a call the filters
 * allow, so every call walks the filter and then does almost nothing in the kernel) and prints
 * the nanoseconds per call measured inside the process, so sandbox start-up is not counted.
 * Built static by bench/seccomp.mjs; runs inside bwrap with and without --seccomp.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 200000;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; i++) syscall(SYS_getppid);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  printf("%.2f\n", ns / n);
  return 0;
}
