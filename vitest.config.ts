import { defineConfig } from 'vitest/config';

// Integration tests start real servers (influxd, snmpsimd, fping) on
// loopback: generous timeouts, and at most two files at a time on CI's two cores.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    maxWorkers: 2,
    fileParallelism: true,
  },
});
