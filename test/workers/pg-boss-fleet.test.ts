/**
 * Issue 18 on pg-boss, with real worker processes, PostgreSQL for the queue (its own pg-boss
 * schema per test) and a shared checkpoint store: a fleet survives SIGKILLs mid-stage, a frozen
 * worker is fenced, the same run enqueued twice runs once, and SIGTERM drains a worker into the
 * others. pg-boss runs each job as slices of T/2 (see src/workers/pg-boss-settings.ts), so runs
 * longer than that also cross deliveries here, which the outcome checks cover too.
 */
import { afterAll, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { enqueueRun } from "../../src/workers/index.js";
import { pgBossJobId } from "../../src/workers/pg-boss-settings.js";
import { FLEET_PIPELINE } from "../support/fleet-pipeline.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "../support/services.js";
import {
  enqueueFleetRuns,
  expectFleetOutcome,
  type FleetSetup,
  workerFleet,
} from "../support/worker-fleet.js";

/** The lease TTL of the tests: pg-boss jobs expire after T, maintenance every T/2, slices of T/2. */
const T = 2_000;
const schemas: string[] = [];
const prefixes: string[] = [];
const managers: CheckpointManager[] = [];
afterAll(async () => {
  for (const manager of managers) await manager.close();
  await dropSchemas(...schemas);
  if (prefixes.length > 0) await deleteKeyPrefixes(...prefixes);
});

/** A fresh queue (own pg-boss schema) and checkpoint store (own schema, or key prefix on Redis). */
async function fresh(
  store: "postgres" | "redis",
): Promise<{ setup: FleetSetup; manager: CheckpointManager }> {
  const boss = uniqueName("pgboss");
  schemas.push(boss);
  let url: string;
  if (store === "redis" && redisUp) {
    const prefix = `${uniqueName("cairn-wk-pgboss")}:`;
    prefixes.push(prefix);
    url = `${REDIS_URL}?keyPrefix=${prefix}`;
  } else {
    const schema = uniqueName("cairn_wk_pgboss");
    schemas.push(schema);
    url = `${POSTGRES_URL}?schema=${schema}`;
  }
  const manager = new CheckpointManager({ store: url });
  managers.push(manager);
  // Set the store up once, before the workers race to do it.
  await manager.getStore();
  return {
    setup: {
      engine: "pg-boss",
      connection: { connectionString: POSTGRES_URL, schema: boss },
      queue: uniqueName("fleet"),
      store: url,
      leaseTtlMs: T,
    },
    manager,
  };
}

const fleet = workerFleet("wk-pgboss");
const runIds = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => `${tag}-${String(i + 1).padStart(2, "0")}`);

describe.skipIf(!postgresUp)("pg-boss fleet", () => {
  it("3 workers, 50 runs, a run's worker SIGKILLed mid-stage twice: every run completes, only the killed stages ran twice", {
    timeout: 90_000,
  }, async () => {
    const { setup, manager } = await fresh("postgres");
    const ids = runIds(50, "kill");
    // One run has two long stages: its worker is SIGKILLed in s3, then the next one in s4. Each
    // death is an expiry and a retry in pg-boss, which a retry limit meant for jobs that restart
    // from zero (pg-boss's default is 2, and slices count too) would turn into a failed run.
    const target = ids[4] as string;
    const workers = await fleet.startWorkers(setup, 3);
    // The workers start on the first runs while the rest are enqueued: watch from the start.
    const enqueued = enqueueFleetRuns(
      setup,
      ids.map((runId) => ({ runId, inputs: runId === target ? { slow: { s3: 1_500, s4: 1_500 } } : {} })),
    );
    const replacements: Promise<unknown>[] = [];
    const killed = new Map<string, number>();
    for (const stage of ["s3", "s4"]) {
      const { worker } = await fleet.inStage(stage, (r) => r === target);
      worker.child.kill("SIGKILL");
      expect(await worker.exited).toMatchObject({ signal: "SIGKILL" });
      killed.set(stage, worker.pid);
      // The fleet goes back to three workers (started in the background, as a supervisor would).
      replacements.push(fleet.startWorker(setup).then((w) => workers.push(w)));
    }
    await enqueued;
    await Promise.all(replacements);
    await fleet.allCompleted(manager, ids);
    const disrupted = [
      { run: target, stage: "s3" },
      { run: target, stage: "s4" },
    ];
    await expectFleetOutcome(manager, ids, fleet.journal(), disrupted);
    // Each killed stage was finished once, by another process than the one killed in it, after
    // pg-boss expired the dead worker's job and delivered it again.
    for (const { stage } of disrupted) {
      const finished = fleet
        .journal()
        .filter((e) => e.run === target && e.stage === stage && e.ev === "finish");
      expect(finished).toHaveLength(1);
      expect(finished[0]?.pid).not.toBe(killed.get(stage));
    }
    expect(killed.get("s3")).not.toBe(killed.get("s4"));
    const deliveries = workers
      .flatMap((w) => w.lines)
      .filter((l) => l.event === "job_started" && l.runId === target)
      .map((l) => l.delivery as number);
    expect(Math.max(...deliveries)).toBeGreaterThanOrEqual(3);
  });

  it("a worker frozen (SIGSTOP) longer than its lease is fenced after SIGCONT; another finishes the run once", {
    timeout: 60_000,
  }, async () => {
    const { setup, manager } = await fresh("redis");
    const ids = runIds(6, "stop");
    const target = ids[0] as string;
    await fleet.startWorkers(setup, 3);
    await enqueueFleetRuns(
      setup,
      ids.map((runId) => ({ runId, inputs: runId === target ? { slow: { s2: 1_500 } } : {} })),
    );
    const { worker: frozen } = await fleet.inStage("s2", (r) => r === target);
    frozen.child.kill("SIGSTOP");
    // pg-boss's maintenance expires the job; another worker gets it, waits out the cairn lease
    // and resumes the run at the stage the frozen worker was in.
    await fleet.inStage(
      "s2",
      (r) =>
        r === target && fleet.journal().some((e) => e.run === r && e.stage === "s2" && e.pid !== frozen.pid),
    );
    frozen.child.kill("SIGCONT");
    await fleet.waitFor("the frozen worker to be fenced", () =>
      frozen.lines.some((l) => l.event === "job_fenced" && l.runId === target),
    );
    await fleet.allCompleted(manager, ids);
    await expectFleetOutcome(manager, ids, fleet.journal(), [{ run: target, stage: "s2" }]);
    const fenced = frozen.lines.find((l) => l.event === "job_fenced");
    expect(fenced?.error).toMatch(/CAIRN_LEASE_LOST|LeaseLostError/);
    // The frozen worker ran nothing of that run after it came back.
    const startedByFrozen = fleet
      .journal()
      .filter((e) => e.run === target && e.ev === "start" && e.stage !== "s1" && e.pid === frozen.pid);
    expect(startedByFrozen.map((e) => e.stage)).toEqual(["s2"]);
    expect(frozen.lines.some((l) => l.event === "job_completed" && l.runId === target)).toBe(false);
  });

  it("the same run id enqueued twice is one job and one execution", { timeout: 60_000 }, async () => {
    const { setup, manager } = await fresh("postgres");
    const runId = "twice-1";
    const enqueue = () =>
      enqueueRun({
        engine: "pg-boss",
        connection: setup.connection,
        queue: setup.queue,
        leaseTtlMs: T,
        pipeline: FLEET_PIPELINE,
        runId,
        inputs: { stageMs: 50 },
      });
    // Before any worker: the second enqueue (and a racing pair) finds the job there.
    const [a, b] = await Promise.all([enqueue(), enqueue()]);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(a).toMatchObject({ runId, jobId: pgBossJobId(setup.queue, runId) });
    expect(b.jobId).toBe(a.jobId);
    expect((await enqueue()).created).toBe(false);
    await fleet.startWorkers(setup, 2);
    await fleet.allCompleted(manager, [runId]);
    // Once completed, the job (until pg-boss archives it) still makes a new enqueue a no-op.
    expect((await enqueue()).created).toBe(false);
    await expectFleetOutcome(manager, [runId], fleet.journal());
  });

  it("SIGTERM drains a worker: its stage finishes and checkpoints, the job goes back and others finish it", {
    timeout: 60_000,
  }, async () => {
    const { setup, manager } = await fresh("postgres");
    const ids = runIds(9, "drain");
    const workers = await fleet.startWorkers(setup, 3);
    await enqueueFleetRuns(
      setup,
      ids.map((runId) => ({ runId, inputs: { stageMs: 250 } })),
    );
    const { worker, run } = await fleet.inStage("s2");
    worker.child.kill("SIGTERM");
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(worker.lines.map((l) => l.event)).toEqual(
      expect.arrayContaining(["draining", "job_returned", "closed"]),
    );
    // The stage it was in finished in it, and was checkpointed: nobody runs it again.
    const own = fleet.journal().filter((e) => e.run === run && e.stage === "s2" && e.pid === worker.pid);
    expect(own.map((e) => e.ev)).toEqual(["start", "finish"]);
    const s2 = (await manager.getCheckpointHistory(run)).find((m) => m.stageName === "s2");
    expect(s2).toBeDefined();
    await fleet.allCompleted(manager, ids);
    await expectFleetOutcome(manager, ids, fleet.journal());
    // The rest of the drained run ran elsewhere.
    const rest = fleet.journal().filter((e) => e.run === run && ["s3", "s4", "s5"].includes(e.stage));
    expect(rest.length).toBeGreaterThan(0);
    expect(rest.every((e) => e.pid !== worker.pid)).toBe(true);
    expect(workers).toHaveLength(3);
  });
});
