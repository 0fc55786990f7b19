import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // Integration tests start subprocesses and servers; two files at a time fits a 2-core machine.
    maxWorkers: 2,
    // The json report lets script/test print a plain "N passed, N failed" closing line.
    reporters: ['default', 'json'],
    outputFile: { json: '.norn/test-results.json' },
    projects: [
      {
        extends: true,
        // Pure tests: no Redis, PostgreSQL or Docker (`npm run test:unit` runs them anywhere).
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        // Real Redis and PostgreSQL (REDIS_URL / DATABASE_URL, or testcontainers), Docker, git.
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
    ],
  },
});
