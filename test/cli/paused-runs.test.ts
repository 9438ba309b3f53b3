/**
 * A paused run is not a running one: `list` and `monitor` call an unfinished run whose newest
 * checkpoint is completed `in_progress` only while a runner holds its lease, else `paused`.
 */
import { afterEach, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline } from "../../src/index.js";
import { runCairn } from "../support/cli.js";
import { storeUrls } from "../support/store-urls.js";

const stores = storeUrls("paused-runs");
const managers: CheckpointManager[] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
});

/** Runs a 3-stage pipeline and pauses it after its first stage; returns the run id. */
async function pausedRun(manager: CheckpointManager, name: string): Promise<string> {
  let pipeline!: Pipeline;
  pipeline = new Pipeline({
    name,
    checkpointEnabled: true,
    checkpointStore: manager,
    onEvent: (e) => {
      if (e.type === "stage_completed" && e.stageName === "first") pipeline.pause();
    },
    steps: [
      { name: "first", agent: () => 1 },
      { name: "second", agent: () => 2 },
      { name: "third", agent: () => 3 },
    ],
  });
  const result = await pipeline.execute();
  expect(result.status).toBe("paused");
  return result.pipelineId;
}

interface Listed {
  pipelineId: string;
  status: string;
}

describe.each(["file", "sqlite"])("a paused run in a %s store", (kind) => {
  const url = () => (stores.urls[kind] as () => string)();
  const cli = async (...args: string[]) => {
    const result = await runCairn([...args, "--store", url()], { cwd: stores.dir() });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    return result.stdout;
  };
  const listed = async (id: string) =>
    (JSON.parse(await cli("list", "--json")) as Listed[]).find((r) => r.pipelineId === id)?.status;

  it("is paused until a runner holds its lease, then in_progress", async () => {
    const manager = new CheckpointManager({ store: url() });
    managers.push(manager);
    const id = await pausedRun(manager, `etl-${kind}`);

    expect((await manager.listPipelines()).find((r) => r.pipelineId === id)?.status).toBe("paused");
    expect((await manager.getRunSummary(id))?.status).toBe("paused");
    expect(await listed(id)).toBe("paused");
    const idle = JSON.parse(await cli("monitor", "--once", "--json")) as { active: Listed[] };
    expect(idle.active.map((r) => r.pipelineId)).not.toContain(id);

    const store = await manager.getStore();
    const attempt = await store.acquireLease(id, "another-runner", 60_000);
    expect(attempt.acquired).toBe(true);
    expect((await manager.getRunSummary(id))?.status).toBe("in_progress");
    expect(await listed(id)).toBe("in_progress");
    expect(
      (JSON.parse(await cli("list", "--json", "--name", `etl-${kind}`)) as { runs: Listed[] }).runs,
    ).toEqual([expect.objectContaining({ pipelineId: id, status: "in_progress" })]);
    const busy = JSON.parse(await cli("monitor", "--once", "--json")) as { active: Listed[] };
    expect(busy.active.map((r) => r.pipelineId)).toContain(id);

    if (attempt.acquired) await store.releaseLease(attempt.lease);
    expect(await listed(id)).toBe("paused");
    // Resuming it finishes the run: completed, whatever the lease.
    const done = await new Pipeline({
      name: `etl-${kind}`,
      checkpointEnabled: true,
      checkpointStore: manager,
      steps: [
        { name: "first", agent: () => 1 },
        { name: "second", agent: () => 2 },
        { name: "third", agent: () => 3 },
      ],
    }).execute();
    expect(done).toMatchObject({ status: "completed", pipelineId: id });
    expect(await listed(id)).toBe("completed");
  });
});
