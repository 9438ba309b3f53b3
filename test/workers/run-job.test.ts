/**
 * The engine-neutral job runner (src/workers/run-job.ts) on the memory store: how each end of a
 * run becomes the outcome an engine adapter acts on. No queue engine is involved.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  CheckpointManager,
  InvalidArgumentError,
  PIPELINE_COMPLETE_STAGE,
  Pipeline,
  type StepDefinition,
} from "../../src/index.js";
import {
  closeResolved,
  type ResolvedPipelines,
  resolvePipelines,
} from "../../src/workers/resolve-pipelines.js";
import { makeJobHandler } from "../../src/workers/run-job.js";
import type { JobControl, WorkerEvent } from "../../src/workers/types.js";

let counter = 0;
const open: ResolvedPipelines[] = [];
const managers: CheckpointManager[] = [];
afterEach(async () => {
  for (const resolved of open.splice(0)) await closeResolved(resolved);
  for (const manager of managers.splice(0)) await manager.close();
});

/** A three-stage pipeline on a fresh memory store; `agents` replaces some stages' agents. */
async function setup(agents: Record<string, StepDefinition["agent"]> = {}) {
  const manager = new CheckpointManager({ store: `memory:run-job-${process.pid}-${++counter}` });
  managers.push(manager);
  const calls: string[] = [];
  const step = (name: string): StepDefinition => ({
    name,
    agent:
      agents[name] ??
      ((inputs: Record<string, unknown>) => {
        calls.push(name);
        return { [name]: inputs.n };
      }),
  });
  const pipeline = new Pipeline({
    name: "jobs",
    steps: [step("a"), step("b"), step("c")],
    checkpointEnabled: true,
    checkpointStore: manager,
  });
  const resolved = await resolvePipelines({ jobs: pipeline }, { sharedStore: true });
  open.push(resolved);
  const events: WorkerEvent[] = [];
  const handler = makeJobHandler(resolved, { leaseTtlMs: 1_000, emit: (e) => events.push(e) });
  return { manager, calls, handler, events };
}

const control = (stop = new AbortController().signal): JobControl => ({ jobId: "j", delivery: 1, stop });

describe("makeJobHandler", () => {
  it("completes a run, and completes it again at once without running a stage", async () => {
    const { handler, calls, events, manager } = await setup();
    const data = { pipeline: "jobs", runId: "r-done", inputs: { n: 1 } };
    expect(await handler(data, control())).toEqual({ kind: "completed" });
    expect(calls).toEqual(["a", "b", "c"]);
    expect(await handler(data, control())).toEqual({ kind: "completed" });
    expect(calls).toEqual(["a", "b", "c"]);
    expect(events.map((e) => e.type)).toEqual([
      "job_started",
      "job_completed",
      "job_started",
      "job_completed",
    ]);
    const history = await manager.getCheckpointHistory("r-done");
    expect(history.map((m) => m.stageName).reverse()).toEqual(["a", "b", "c", PIPELINE_COMPLETE_STAGE]);
  });

  it("returns the job when stopped: the running stage finishes and checkpoints, the next delivery resumes", async () => {
    const stop = new AbortController();
    let release = () => {};
    const { handler, calls, events } = await setup({
      b: async () => {
        calls.push("b");
        stop.abort();
        await new Promise<void>((resolve) => {
          release = resolve;
          setTimeout(resolve, 50);
        });
        return "b-done";
      },
    });
    const data = { pipeline: "jobs", runId: "r-stop", inputs: { n: 2 } };
    expect(await handler(data, control(stop.signal))).toEqual({ kind: "returned" });
    release();
    expect(calls).toEqual(["a", "b"]);
    expect(events.at(-1)).toMatchObject({ type: "job_returned", runId: "r-stop" });
    expect(await handler(data, control())).toEqual({ kind: "completed" });
    expect(calls).toEqual(["a", "b", "c"]);
  });

  it("returns a job stopped while it waits for a held lease, without running anything", async () => {
    const { handler, calls, manager, events } = await setup();
    const store = await manager.getStore();
    const held = await store.acquireLease("r-held", "someone-else", 60_000);
    expect(held.acquired).toBe(true);
    const stop = new AbortController();
    const outcome = handler({ pipeline: "jobs", runId: "r-held" }, control(stop.signal));
    await expect.poll(() => events.some((e) => e.type === "waiting_for_lease")).toBe(true);
    stop.abort();
    expect(await outcome).toEqual({ kind: "returned" });
    expect(calls).toEqual([]);
    expect(events.find((e) => e.type === "waiting_for_lease")).toMatchObject({ holder: "someone-else" });
  });

  it("waits out a held lease, then takes the run over and resumes it", async () => {
    const { handler, calls, manager, events } = await setup();
    const data = { pipeline: "jobs", runId: "r-wait", inputs: { n: 3 } };
    // A first delivery checkpoints stages a and b, stopped by a drain after a.
    const stop = new AbortController();
    const first = handler(data, control(stop.signal));
    await expect.poll(() => calls.length).toBeGreaterThan(0);
    stop.abort();
    expect(await first).toMatchObject({ kind: expect.stringMatching(/returned|completed/) });
    const done = [...calls];
    // Then a worker that died holding the run's lease: its lease runs out on its own.
    const store = await manager.getStore();
    const released = await store.getLease("r-wait");
    if (released) await store.releaseLease(released);
    const held = await store.acquireLease("r-wait", "dead-worker", 800);
    expect(held.acquired).toBe(true);
    events.length = 0;
    expect(await handler(data, control())).toEqual({ kind: "completed" });
    // Nothing completed before ran again; the dead worker's lease was waited out.
    expect(calls.slice(done.length)).toEqual(["a", "b", "c"].slice(done.length));
    expect(events.map((e) => e.type)).toEqual(["job_started", "waiting_for_lease", "job_completed"]);
  });

  it("is fenced when another runner takes the lease over mid-stage: nothing more is written", async () => {
    let managerRef: CheckpointManager | undefined;
    const { handler, manager, events } = await setup({
      b: async (_inputs, context) => {
        // Another worker takes the run over while this stage runs (as after a long pause).
        const store = await (managerRef as CheckpointManager).getStore();
        const lease = await store.getLease(context.pipelineId);
        if (lease) await store.releaseLease(lease);
        const taken = await store.acquireLease(context.pipelineId, "new-holder", 60_000);
        expect(taken.acquired).toBe(true);
        return "b";
      },
    });
    managerRef = manager;
    const outcome = await handler({ pipeline: "jobs", runId: "r-fenced" }, control());
    expect(outcome.kind).toBe("fenced");
    expect(outcome).toMatchObject({ error: { code: "CAIRN_LEASE_LOST" } });
    expect(events.at(-1)).toMatchObject({ type: "job_fenced", runId: "r-fenced" });
    const history = await manager.getCheckpointHistory("r-fenced");
    expect(history.map((m) => m.stageName)).toEqual(["a"]);
  });

  it("fails the job when the pipeline fails after its retries", async () => {
    const { handler, events } = await setup({
      b: () => {
        throw new Error("bad data");
      },
    });
    const outcome = await handler({ pipeline: "jobs", runId: "r-fail" }, control());
    expect(outcome).toMatchObject({ kind: "failed", error: { code: "CAIRN_STAGE_FAILED" } });
    expect(events.at(-1)).toMatchObject({ type: "job_failed", runId: "r-fail" });
  });

  it("fails a job naming an unknown pipeline or carrying a bad payload, without throwing", async () => {
    const { handler, events } = await setup();
    const unknown = await handler({ pipeline: "nope", runId: "r1" }, control());
    expect(unknown).toMatchObject({ kind: "failed", error: expect.any(InvalidArgumentError) });
    expect((unknown as { error: Error }).error.message).toMatch(/pipeline "nope".*it runs: jobs/);
    const bad = await handler({ pipeline: "jobs", runId: "no spaces" }, control());
    expect(bad).toMatchObject({ kind: "failed", error: expect.any(InvalidArgumentError) });
    expect(events.map((e) => e.type)).toEqual(["error", "error"]);
  });
});

describe("resolvePipelines", () => {
  it("loads a pipeline file, known by its key and its own name, and refuses its local store unless shared", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cairn-resolve-"));
    try {
      await writeFile(join(dir, "agents.mjs"), "export const double = (inputs) => ({ n: inputs.n * 2 });\n");
      const file = join(dir, "pipeline.yaml");
      await writeFile(
        file,
        [
          "name: from_file",
          `checkpoint: { enabled: true, store: "memory:resolve-${process.pid}" }`,
          "steps:",
          "  - { name: double, agent: ./agents.mjs:double }",
          "",
        ].join("\n"),
      );
      await expect(resolvePipelines({ nightly: file }, { sharedStore: false })).rejects.toMatchObject({
        code: "CAIRN_STORE_NOT_SHARED",
        pipeline: "from_file",
        strategy: "memory",
      });
      const resolved = await resolvePipelines({ nightly: file }, { sharedStore: true });
      open.push(resolved);
      expect([...resolved.keys()]).toEqual(["nightly", "from_file"]);
      const handler = makeJobHandler(resolved, { leaseTtlMs: 1_000, emit: () => {} });
      expect(await handler({ pipeline: "nightly", runId: "f1", inputs: { n: 2 } }, control())).toEqual({
        kind: "completed",
      });
      const manager = resolved.get("from_file")?.manager as CheckpointManager;
      const [done] = await manager.getCheckpointHistory("f1");
      expect(done?.stageName).toBe(PIPELINE_COMPLETE_STAGE);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
