/**
 * The issue 18 fleet scenarios every worker engine must pass (test/workers/*-fleet.test.ts), with
 * real worker processes and a shared checkpoint store (PostgreSQL or Redis): a fleet survives
 * SIGKILLs mid-stage, a frozen worker is fenced, the same run enqueued twice runs once, and
 * SIGTERM drains a worker into the others. What differs per engine is its `FleetEngine` profile.
 */
import { afterAll, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import type { WorkerConnection, WorkerEngine } from "../../src/workers/index.js";
import { enqueueRun } from "../../src/workers/index.js";
import { FLEET_PIPELINE } from "./fleet-pipeline.js";
import { deleteKeyPrefixes, dropSchemas, POSTGRES_URL, REDIS_URL, redisUp, uniqueName } from "./services.js";
import {
  enqueueFleetRuns,
  expectFleetOutcome,
  type FleetSetup,
  type FleetWorker,
  workerFleet,
} from "./worker-fleet.js";

type StoreKind = "postgres" | "redis";

/** What the scenarios need to know about one engine. */
export interface FleetEngine {
  engine: WorkerEngine;
  /** The describe block's title. */
  title: string;
  /** Whether the servers it needs answer (the scenarios are skipped otherwise). */
  available: boolean;
  /** Names the harness's temporary folder and the test's schemas and key prefixes. */
  tag: string;
  /** The lease TTL of the tests. */
  leaseTtlMs: number;
  /** A fresh queue connection of its own; `cleanup` registers what the file removes after. */
  queueConnection(cleanup: { schemas: string[]; prefixes: string[] }): WorkerConnection;
  /** Whether all workers are ready before the runs are enqueued (else both at once). */
  startWorkersFirst: boolean;
  /** How long the twice-killed run's two long stages work. */
  killStageMs: number;
  killTimeout: number;
  /** Checks the deliveries of the twice-killed run's job, by the first workers and by all. */
  expectKillDeliveries(byFirstWorkers: number[], byAll: number[]): void;
  /** The job id enqueueRun returns for a run. */
  jobId(queue: string, runId: string): string;
  /** The checkpoint store (and thus server) of the enqueued-twice and drain scenarios. */
  store: { twice: StoreKind; drain: StoreKind };
  twiceWorkers: number;
  drain: { runs: number; stageMs: number };
}

/** Defines the fleet scenarios for one engine. */
export function fleetScenarios(profile: FleetEngine): void {
  const T = profile.leaseTtlMs;
  const cleanup = { schemas: [] as string[], prefixes: [] as string[] };
  const managers: CheckpointManager[] = [];
  afterAll(async () => {
    for (const manager of managers) await manager.close();
    await dropSchemas(...cleanup.schemas);
    await deleteKeyPrefixes(...cleanup.prefixes);
  });

  /** A fresh queue and checkpoint store (own schema, or key prefix on Redis). */
  async function fresh(store: StoreKind): Promise<{ setup: FleetSetup; manager: CheckpointManager }> {
    const connection = profile.queueConnection(cleanup);
    let url: string;
    if (store === "redis" && redisUp) {
      const prefix = `${uniqueName(`cairn-${profile.tag}`)}:`;
      cleanup.prefixes.push(prefix);
      url = `${REDIS_URL}?keyPrefix=${prefix}`;
    } else {
      const schema = uniqueName(`cairn_${profile.tag.replaceAll("-", "_")}`);
      cleanup.schemas.push(schema);
      url = `${POSTGRES_URL}?schema=${schema}`;
    }
    const manager = new CheckpointManager({ store: url });
    managers.push(manager);
    // Set the store up once, before the workers race to do it.
    await manager.getStore();
    return {
      setup: { engine: profile.engine, connection, queue: uniqueName("fleet"), store: url, leaseTtlMs: T },
      manager,
    };
  }

  const fleet = workerFleet(profile.tag);
  const runIds = (n: number, tag: string) =>
    Array.from({ length: n }, (_, i) => `${tag}-${String(i + 1).padStart(2, "0")}`);
  /** Starts `n` workers and enqueues the runs, in the engine's order; `enqueued` settles with the runs. */
  async function startAndEnqueue(
    setup: FleetSetup,
    n: number,
    runs: Parameters<typeof enqueueFleetRuns>[1],
  ): Promise<{ workers: FleetWorker[]; enqueued: Promise<unknown> }> {
    if (!profile.startWorkersFirst) {
      const [workers] = await Promise.all([fleet.startWorkers(setup, n), enqueueFleetRuns(setup, runs)]);
      return { workers, enqueued: Promise.resolve() };
    }
    const workers = await fleet.startWorkers(setup, n);
    const enqueued = enqueueFleetRuns(setup, runs);
    enqueued.catch(() => {}); // awaited by the caller; a failure before then must not go unhandled
    return { workers, enqueued };
  }
  const deliveries = (workers: FleetWorker[], runId: string) =>
    workers
      .flatMap((w) => w.lines)
      .filter((l) => l.event === "job_started" && l.runId === runId)
      .map((l) => l.delivery as number);

  describe.skipIf(!profile.available)(profile.title, () => {
    it("3 workers, 50 runs, a run's worker SIGKILLed mid-stage twice: every run completes, only the killed stages ran twice", {
      timeout: profile.killTimeout,
    }, async () => {
      const { setup, manager } = await fresh("postgres");
      const ids = runIds(50, "kill");
      // One run has two long stages: its worker is SIGKILLed in s3, then the next one in s4. The
      // engine sees two deaths of that job (see each engine's profile for why that must not fail it).
      const target = ids[4] as string;
      const slow = { s3: profile.killStageMs, s4: profile.killStageMs };
      const { workers, enqueued } = await startAndEnqueue(
        setup,
        3,
        ids.map((runId) => ({ runId, inputs: runId === target ? { slow } : {} })),
      );
      const replacements: Promise<FleetWorker>[] = [];
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
      const replaced = await Promise.all(replacements);
      await enqueued;
      await fleet.allCompleted(manager, ids);
      const disrupted = [
        { run: target, stage: "s3" },
        { run: target, stage: "s4" },
      ];
      await expectFleetOutcome(manager, ids, fleet.journal(), disrupted);
      // Each killed stage was finished once, by another process than the one killed in it.
      for (const { stage } of disrupted) {
        const finished = fleet
          .journal()
          .filter((e) => e.run === target && e.stage === stage && e.ev === "finish");
        expect(finished).toHaveLength(1);
        expect(finished[0]?.pid).not.toBe(killed.get(stage));
      }
      expect(killed.get("s3")).not.toBe(killed.get("s4"));
      profile.expectKillDeliveries(
        deliveries(workers, target),
        deliveries([...workers, ...replaced], target),
      );
    });

    it("a worker frozen (SIGSTOP) longer than its lease is fenced after SIGCONT; another finishes the run once", {
      timeout: 60_000,
    }, async () => {
      const { setup, manager } = await fresh("redis");
      const ids = runIds(6, "stop");
      const target = ids[0] as string;
      const { enqueued } = await startAndEnqueue(
        setup,
        3,
        ids.map((runId) => ({ runId, inputs: runId === target ? { slow: { s2: 1_500 } } : {} })),
      );
      await enqueued;
      const { worker: frozen } = await fleet.inStage("s2", (r) => r === target);
      frozen.child.kill("SIGSTOP");
      // The engine redelivers the job (BullMQ sees it stalled, pg-boss's maintenance expires it);
      // another worker gets it, waits out the cairn lease and resumes the run at the stage the
      // frozen worker was in.
      await fleet.inStage(
        "s2",
        (r) =>
          r === target &&
          fleet.journal().some((e) => e.run === r && e.stage === "s2" && e.pid !== frozen.pid),
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
      const { setup, manager } = await fresh(profile.store.twice);
      const runId = "twice-1";
      const enqueue = () =>
        enqueueRun({
          engine: profile.engine,
          connection: setup.connection,
          queue: setup.queue,
          pipeline: FLEET_PIPELINE,
          runId,
          inputs: { stageMs: 50 },
          leaseTtlMs: T,
        });
      // Before any worker: the second enqueue (and a racing pair) finds the job there.
      const [a, b] = await Promise.all([enqueue(), enqueue()]);
      expect([a.created, b.created].sort()).toEqual([false, true]);
      expect(a).toMatchObject({ runId, jobId: profile.jobId(setup.queue, runId) });
      expect(b.jobId).toBe(a.jobId);
      expect((await enqueue()).created).toBe(false);
      await fleet.startWorkers(setup, profile.twiceWorkers);
      await fleet.allCompleted(manager, [runId]);
      // Once completed, the kept job (on pg-boss: until it is archived) still makes a new enqueue a no-op.
      expect((await enqueue()).created).toBe(false);
      await expectFleetOutcome(manager, [runId], fleet.journal());
    });

    it("SIGTERM drains a worker: its stage finishes and checkpoints, the job goes back and others finish it", {
      timeout: 60_000,
    }, async () => {
      const { setup, manager } = await fresh(profile.store.drain);
      const ids = runIds(profile.drain.runs, "drain");
      const { workers, enqueued } = await startAndEnqueue(
        setup,
        3,
        ids.map((runId) => ({ runId, inputs: { stageMs: profile.drain.stageMs } })),
      );
      await enqueued;
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
}
