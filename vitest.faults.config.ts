import { defineConfig } from "vitest/config"

/**
 * The fault suite (`npm run test:faults`): Postgres, Redis and instances of its own, killed, stalled and
 * restarted under traffic. One file at a time: each runs several processes. `FAULTS_SHORT=1` is the CI subset.
 */
export default defineConfig({
  test: {
    include: ["test/faults/**/*.test.ts"],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: "forks",
    fileParallelism: false,
    reporters: ["default"]
  }
})
