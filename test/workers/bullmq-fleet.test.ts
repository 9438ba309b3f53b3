/**
 * Issue 18 on BullMQ: the fleet scenarios of test/support/fleet-scenarios.ts with real worker
 * processes, Redis for the queue (its own BullMQ prefix per test) and a shared checkpoint store
 * (PostgreSQL or Redis).
 */
import { expect } from "vitest";
import { fleetScenarios } from "../support/fleet-scenarios.js";
import { postgresUp, REDIS_URL, redisUp, uniqueName } from "../support/services.js";

fleetScenarios({
  engine: "bullmq",
  title: "BullMQ fleet",
  available: redisUp && postgresUp,
  tag: "wk-bullmq",
  // BullMQ's lock is T, its stall check every T/2.
  leaseTtlMs: 2_000,
  queueConnection: ({ prefixes }) => {
    const bull = uniqueName("cairn-bull");
    prefixes.push(`${bull}:`);
    return { url: REDIS_URL, prefix: bull };
  },
  startWorkersFirst: false,
  killStageMs: 2_500,
  killTimeout: 120_000,
  // BullMQ counts two stalls of the killed run's job; with its default maxStalledCount of 1 the
  // run would be failed. Deliveries 1 and 2 were killed (on a first worker, or on the replacement
  // that picked the job up after the first kill) and delivery 3 finished the run.
  expectKillDeliveries: (_byFirstWorkers, byAll) => {
    expect(byAll).toEqual(expect.arrayContaining([1, 2, 3]));
  },
  jobId: (_queue, runId) => runId,
  store: { twice: "redis", drain: "redis" },
  twiceWorkers: 1,
  drain: { runs: 6, stageMs: 150 },
});
