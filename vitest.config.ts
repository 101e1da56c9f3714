import { defineConfig } from 'vitest/config';

// Tests drive real sandboxes and real cgroups on a 2-core machine: one file at a time keeps
// resource measurements (memory peaks, CPU shares) honest. test/vm runs inside the v2 VM only.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/security/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    globalSetup: ['test/helpers/tmp-root.ts'],
  },
});
