/**
 * `execute({ runId })` on a run whose checkpoints are all gone while the store's head record says
 * it had some (deleted by hand): a `history_lost` event and a warning, `CAIRN_HISTORY_LOST`, and
 * nothing written; never a silent start over at sequence 1. A run deleted through cairn starts anew.
 */
import { readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { expect, it } from "vitest";
import { CheckpointManager, Pipeline, type PipelineEvent } from "../../src/index.js";
import { storeUrls } from "../support/store-urls.js";

const { urls } = storeUrls("pipeline-lost");

function pipelineOn(store: string, events: PipelineEvent[]): Pipeline {
  return new Pipeline({
    name: "lost",
    checkpointEnabled: true,
    checkpointStore: store,
    onEvent: (event) => events.push(event),
    steps: ["a", "b", "c"].map((name) => ({ name, agent: () => ({ name }) })),
  });
}

it("refuses to start a run over whose checkpoints were deleted by hand, saying so", async () => {
  const store = (urls.file as () => string)();
  const base = store.slice("file:".length);
  const events: PipelineEvent[] = [];
  const first = await pipelineOn(store, events).execute({ runId: "gone" });
  expect(first.status).toBe("completed");
  const written = events.flatMap((e) => (e.type === "checkpoint_created" ? [e.checkpointId] : []));
  for (const name of await readdir(join(base, "gone"))) {
    if (name.endsWith(".json")) await unlink(join(base, "gone", name));
  }

  // A new process: only the store's head record remembers the run.
  events.length = 0;
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  let error: unknown;
  try {
    error = await pipelineOn(store, events)
      .execute({ runId: "gone" })
      .catch((e: unknown) => e);
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off("warning", onWarning);
  }
  const expected = written.at(-1) as string;
  expect(error).toMatchObject({ code: "CAIRN_HISTORY_LOST", pipelineId: "gone", expected });
  expect(events).toMatchObject([{ type: "history_lost", pipelineId: "gone", expected }]);
  expect(warnings.map((w) => w.message)).toContainEqual(expect.stringContaining("Run gone lost its history"));
  const manager = new CheckpointManager({ store });
  try {
    expect(await (await manager.getStore()).listCheckpoints("gone")).toEqual([]);
    // Deleted through cairn, the run is gone for good and its id starts a new run.
    await manager.cleanupPipelines(["gone"], { force: true });
    const again = await pipelineOn(store, []).execute({ runId: "gone" });
    expect(again).toMatchObject({ status: "completed", skippedStages: [] });
  } finally {
    await manager.close();
  }
});
