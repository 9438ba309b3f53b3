/**
 * Issue 18 on pg-boss: the fleet scenarios of test/support/fleet-scenarios.ts with real worker
 * processes, PostgreSQL for the queue (its own pg-boss schema per test) and a shared checkpoint
 * store. pg-boss runs each job as slices of T/2 (see src/workers/pg-boss-settings.ts), so runs
 * longer than that also cross deliveries here, which the outcome checks cover too.
 */
import { expect } from "vitest";
import { pgBossJobId } from "../../src/workers/pg-boss-settings.js";
import { fleetScenarios } from "../support/fleet-scenarios.js";
import { POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

fleetScenarios({
  engine: "pg-boss",
  title: "pg-boss fleet",
  available: postgresUp,
  tag: "wk-pgboss",
  // pg-boss jobs expire after T, maintenance every T/2, slices of T/2.
  leaseTtlMs: 2_000,
  queueConnection: ({ schemas }) => {
    const boss = uniqueName("pgboss");
    schemas.push(boss);
    return { connectionString: POSTGRES_URL, schema: boss };
  },
  // The workers start on the first runs while the rest are enqueued: watch from the start.
  startWorkersFirst: true,
  killStageMs: 1_500,
  killTimeout: 90_000,
  // Each death is an expiry and a retry in pg-boss, which a retry limit meant for jobs that
  // restart from zero (pg-boss's default is 2, and slices count too) would turn into a failed run.
  expectKillDeliveries: (_byFirstWorkers, byAll) => {
    expect(Math.max(...byAll)).toBeGreaterThanOrEqual(3);
  },
  jobId: pgBossJobId,
  store: { twice: "postgres", drain: "postgres" },
  twiceWorkers: 2,
  drain: { runs: 9, stageMs: 250 },
});
