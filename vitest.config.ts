import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 900_000,
    reporters: ["default", "./test/support/summary-reporter.ts"],
    // The hosts level boots real nodes; it runs in its own file pool and never in parallel with itself.
    fileParallelism: true,
  },
});
