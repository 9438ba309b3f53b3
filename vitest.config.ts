import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // The repo's own store tests use the published kit entry point, built or not.
    alias: { "cairn-pipelines/testing": fileURLToPath(new URL("./src/testing/index.ts", import.meta.url)) },
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Crash tests spawn real processes; two cores are enough for two workers.
    maxWorkers: 2,
  },
});
