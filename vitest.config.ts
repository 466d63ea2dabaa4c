import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own process: native handles, namespaces and fds do not leak across files.
    pool: 'forks',
    // Kernel tests share the host's per-CPU backlog: one file at a time.
    fileParallelism: false,
    // Loads take up to ~0.3 s and namespace tests need retransmits.
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
