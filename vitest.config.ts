import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'lambdas/**/*.test.ts', 'lib/**/*.test.ts'],
    // Starts DynamoDB Local (java) and the SQS emulator once, on free ports, and provide()s
    // their endpoints; each test file makes its own table and queues.
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Three files at a time, although CI machines have two cores: most of the suite's wall time is
    // waiting (e2e runtimes holding leases for real seconds, child processes, DynamoDB Local), not
    // CPU. Vitest's default on two cores is one file at a time, which made the suite ~3x slower.
    maxWorkers: 3,
    reporters: ['default'],
  },
});
