/**
 * `createWorker` and `enqueueRun` refuse bad options before connecting to anything: every test
 * here runs without a queue server.
 */
import { describe, expect, it } from "vitest";
import { Pipeline } from "../../src/index.js";
import { createWorker, enqueueRun, StoreNotSharedError } from "../../src/workers/index.js";

const pipeline = (store: string, checkpointEnabled = true) =>
  new Pipeline({
    name: "p",
    steps: [{ name: "a", agent: () => 1 }],
    checkpointEnabled,
    checkpointStore: store,
  });
const base = { engine: "bullmq" as const, connection: "redis://127.0.0.1:1" };

describe("createWorker options", () => {
  it.each([
    [{ engine: "kafka" }, /engine must be "bullmq" or "pg-boss"/],
    [{ connection: "" }, /connection must be/],
    [{ concurrency: 0 }, /concurrency must be an integer ≥ 1/],
    [{ concurrency: 1.5 }, /concurrency must be an integer ≥ 1/],
    [{ leaseTtlMs: 10 }, /leaseTtlMs must be an integer ≥ 1000/],
    [{ queue: "a:b" }, /queue "a:b" is not a valid queue name/],
    [{ pipelines: {} }, /pipelines must map at least one pipeline/],
    [{ concurency: 2 }, /has no option "concurency"/],
  ])("refuses %o", async (bad, message) => {
    const options = { ...base, pipelines: { p: pipeline("memory:opts") }, ...bad };
    await expect(createWorker(options as never)).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
      message: expect.stringMatching(message),
    });
  });

  it("refuses a pipeline without checkpoints", async () => {
    await expect(createWorker({ ...base, pipelines: { p: pipeline("memory:x", false) } })).rejects.toThrow(
      /checkpointEnabled off/,
    );
  });

  it.each([
    ["memory:shared-check", "memory"],
    ["sqlite:/tmp/cairn-not-shared.db", "sqlite"],
    ["file:/tmp/cairn-not-shared", "file"],
  ])("refuses the non-shared store %s unless told it is shared", async (store, strategy) => {
    const error = await createWorker({ ...base, pipelines: { p: pipeline(store) } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreNotSharedError);
    expect(error).toMatchObject({ code: "CAIRN_STORE_NOT_SHARED", strategy, pipeline: "p" });
    expect((error as Error).message).toMatch(/sharedStore: true/);
  });
});

describe("enqueueRun options", () => {
  it.each([
    [{ runId: "no spaces" }, /runId "no spaces" is not a valid run id/],
    [{ pipeline: "" }, /pipeline must be the name of a pipeline/],
    [{ inputs: [1] }, /inputs must be an object/],
    [{ engine: "x" }, /engine must be/],
  ])("refuses %o", async (bad, message) => {
    await expect(enqueueRun({ ...base, pipeline: "p", ...bad } as never)).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
      message: expect.stringMatching(message),
    });
  });
});
