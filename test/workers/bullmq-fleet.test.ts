/**
 * Issue 18 on BullMQ, with real worker processes, Redis for the queue and a shared checkpoint
 * store (PostgreSQL or Redis): a fleet survives SIGKILLs mid-stage, a frozen worker is fenced,
 * the same run enqueued twice runs once, and SIGTERM drains a worker into the others.
 */
import { afterAll, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { enqueueRun } from "../../src/workers/index.js";
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

/** The lease TTL of the tests: BullMQ's lock is T, its stall check every T/2. */
const T = 2_000;
const schemas: string[] = [];
const prefixes: string[] = [];
const managers: CheckpointManager[] = [];
afterAll(async () => {
  for (const manager of managers) await manager.close();
  if (postgresUp) await dropSchemas(...schemas);
  if (redisUp) await deleteKeyPrefixes(...prefixes);
});

/** A fresh queue (own BullMQ prefix) and checkpoint store (own schema or key prefix). */
async function fresh(
  store: "postgres" | "redis",
): Promise<{ setup: FleetSetup; manager: CheckpointManager }> {
  const bull = uniqueName("cairn-bull");
  prefixes.push(`${bull}:`);
  let url: string;
  if (store === "postgres") {
    const schema = uniqueName("cairn_wk_bull");
    schemas.push(schema);
    url = `${POSTGRES_URL}?schema=${schema}`;
  } else {
    const prefix = `${uniqueName("cairn-wk-bull")}:`;
    prefixes.push(prefix);
    url = `${REDIS_URL}?keyPrefix=${prefix}`;
  }
  const manager = new CheckpointManager({ store: url });
  managers.push(manager);
  // Set the store up once, before the workers race to do it.
  await manager.getStore();
  return {
    setup: {
      engine: "bullmq",
      connection: { url: REDIS_URL, prefix: bull },
      queue: uniqueName("fleet"),
      store: url,
      leaseTtlMs: T,
    },
    manager,
  };
}

const fleet = workerFleet("wk-bullmq");
const runIds = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => `${tag}-${String(i + 1).padStart(2, "0")}`);

describe.skipIf(!redisUp || !postgresUp)("BullMQ fleet", () => {
  it("3 workers, 50 runs, a run's worker SIGKILLed mid-stage twice: every run completes, only the killed stages ran twice", async () => {
    const { setup, manager } = await fresh("postgres");
    const ids = runIds(50, "kill");
    // One run has two long stages: its worker is SIGKILLed in s3, then the next one in s4. BullMQ
    // counts two stalls of that job; with its default maxStalledCount of 1 the run would be failed.
    const target = ids[4] as string;
    const [workers] = await Promise.all([
      fleet.startWorkers(setup, 3),
      enqueueFleetRuns(
        setup,
        ids.map((runId) => ({ runId, inputs: runId === target ? { slow: { s3: 2_500, s4: 2_500 } } : {} })),
      ),
    ]);
    const replacements: Promise<unknown>[] = [];
    const killed = new Map<string, number>();
    for (const stage of ["s3", "s4"]) {
      const { worker } = await fleet.inStage(stage, (r) => r === target);
      worker.child.kill("SIGKILL");
      expect(await worker.exited).toMatchObject({ signal: "SIGKILL" });
      killed.set(stage, worker.pid);
      // The fleet goes back to three workers (started in the background, as a supervisor would).
      const replacement = fleet.startWorker(setup);
      replacement.catch(() => {}); // awaited below; a failure before then must not go unhandled
      replacements.push(replacement);
    }
    await Promise.all(replacements);
    await fleet.allCompleted(manager, ids);
    const disrupted = [
      { run: target, stage: "s3" },
      { run: target, stage: "s4" },
    ];
    await expectFleetOutcome(manager, ids, fleet.journal(), disrupted);
    // Each killed stage was finished once, by another process than the one killed in it.
    for (const { stage } of disrupted) {
      const entries = fleet.journal().filter((e) => e.run === target && e.stage === stage);
      const finished = entries.filter((e) => e.ev === "finish");
      expect(finished).toHaveLength(1);
      expect(finished[0]?.pid).not.toBe(killed.get(stage));
    }
    expect(killed.get("s3")).not.toBe(killed.get("s4"));
    // The third delivery of the job finished the run.
    const deliveries = workers
      .concat()
      .flatMap((w) => w.lines)
      .filter((l) => l.event === "job_started" && l.runId === target)
      .map((l) => l.delivery);
    expect(deliveries).toContain(1);
    expect(deliveries).toContain(2);
  }, 120_000);

  it("a worker frozen (SIGSTOP) longer than its lease is fenced after SIGCONT; another finishes the run once", async () => {
    const { setup, manager } = await fresh("redis");
    const ids = runIds(6, "stop");
    const target = ids[0] as string;
    await Promise.all([
      fleet.startWorkers(setup, 3),
      enqueueFleetRuns(
        setup,
        ids.map((runId) => ({ runId, inputs: runId === target ? { slow: { s2: 1_500 } } : {} })),
      ),
    ]);
    const { worker: frozen } = await fleet.inStage("s2", (r) => r === target);
    frozen.child.kill("SIGSTOP");
    // Another worker gets the job once BullMQ sees it stalled, waits out the cairn lease and resumes.
    await fleet.inStage(
      "s2",
      (r) => r === target && fleet.journal().some((e) => e.run === r && e.pid !== frozen.pid),
    );
    frozen.child.kill("SIGCONT");
    await fleet.waitFor("the frozen worker to be fenced", () =>
      frozen.lines.some((l) => l.event === "job_fenced" && l.runId === target),
    );
    await fleet.allCompleted(manager, ids);
    await expectFleetOutcome(manager, ids, fleet.journal(), [{ run: target, stage: "s2" }]);
    const fenced = frozen.lines.find((l) => l.event === "job_fenced");
    expect(fenced?.error).toMatch(/CAIRN_LEASE_LOST|LeaseLostError/);
    // The frozen worker completed nothing of that run after it came back.
    const completedBy = fleet
      .journal()
      .filter((e) => e.run === target && e.ev === "start" && e.stage !== "s1");
    expect(completedBy.filter((e) => e.pid === frozen.pid).map((e) => e.stage)).toEqual(["s2"]);
    expect(frozen.lines.some((l) => l.event === "job_completed" && l.runId === target)).toBe(false);
  }, 60_000);

  it("the same run id enqueued twice is one job and one execution", async () => {
    const { setup, manager } = await fresh("redis");
    const runId = "twice-1";
    const enqueue = () =>
      enqueueRun({
        engine: "bullmq",
        connection: setup.connection,
        queue: setup.queue,
        pipeline: FLEET_PIPELINE,
        runId,
        inputs: { stageMs: 50 },
      });
    // Before any worker: the second enqueue (and a racing pair) finds the job there.
    const [a, b] = await Promise.all([enqueue(), enqueue()]);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(a).toMatchObject({ runId, jobId: runId });
    expect((await enqueue()).created).toBe(false);
    await fleet.startWorker(setup);
    await fleet.allCompleted(manager, [runId]);
    // Once completed, the kept job still makes a new enqueue a no-op.
    expect((await enqueue()).created).toBe(false);
    await expectFleetOutcome(manager, [runId], fleet.journal());
  }, 60_000);

  it("SIGTERM drains a worker: its stage finishes and checkpoints, the job goes back and others finish it", async () => {
    const { setup, manager } = await fresh("redis");
    const ids = runIds(6, "drain");
    const [workers] = await Promise.all([
      fleet.startWorkers(setup, 3),
      enqueueFleetRuns(
        setup,
        ids.map((runId) => ({ runId, inputs: { stageMs: 150 } })),
      ),
    ]);
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
  }, 60_000);
});
