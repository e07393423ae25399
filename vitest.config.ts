import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/helpers/fast-check-seed.ts'],
    // Probes the PostgreSQL test server once: its suites run, or are skipped with one line.
    globalSetup: ['test/helpers/postgres-setup.ts'],
    // Tests wait on progress, not on a clock; a timeout only stops a hang, so it is set for a
    // loaded machine (`npm run test:busy`), where a test takes several times as long as at rest.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
