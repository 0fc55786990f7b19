import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['test/support/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // Integration tests start subprocesses and servers; two files at a time fits a 2-core machine.
    maxWorkers: 2,
    // The json report lets script/test print a plain "N passed, N failed" closing line.
    reporters: ['default', ['json', { outputFile: '.norn/test-results.json' }]],
  },
});
