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
    reporters: ['default'],
  },
});
