/**
 * SIGKILL of a real process while two branches of a DAG run: the resume (another process)
 * re-runs only the stages without a checkpoint, and every stage's side-effect journal shows it
 * completed exactly once per checkpointed completion. Children run `fixtures/kill-runner.mjs` on
 * the built package (`dist/`, built by the global setup).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { journalCounts, killRunners } from "../support/kill-runner.js";

const TEST_TIMEOUT = 60_000;
const {
  dir: tmp,
  startRunner,
  stores: STORES,
} = killRunners(fileURLToPath(new URL("./fixtures/kill-runner.mjs", import.meta.url)), "dag-kill");

/** Checkpoints written after a stage completed (not failed ones, not the final one), by stage. */
async function checkpointedCompletions(url: string): Promise<Record<string, number>> {
  const manager = new CheckpointManager({ store: url });
  try {
    const runId = (await manager.listRuns("dagcrash")).runs[0]?.pipelineId as string;
    const counts: Record<string, number> = {};
    for (const m of await manager.getCheckpointHistory(runId))
      if (m.status !== "failed" && ["a", "b", "c", "d"].includes(m.stageName))
        counts[m.stageName] = (counts[m.stageName] ?? 0) + 1;
    return counts;
  } finally {
    await manager.close();
  }
}

describe.each(STORES)("SIGKILL while two DAG branches run ($name store)", (store) => {
  it.skipIf(store.skip === true)(
    "both branches in flight: the resume runs them and the join; a is reused",
    async () => {
      const url = store.url();
      const journal = join(tmp(), "journal");
      const first = startRunner({ store: url, journal, hangAt: ["b", "c"] });
      await first.until((r) => ["b", "c"].every((s) => r.some((e) => e.event === "hang" && e.stage === s)));
      first.child.kill("SIGKILL");
      await first.exited;
      expect(first.reports.filter((r) => r.event === "checkpoint").map((r) => r.stage)).toEqual(["a"]);

      const second = startRunner({ store: url, journal, retryLockedForMs: 15_000 });
      await second.exited;
      const result = second.reports.at(-1);
      expect(result?.event, second.describe()).toBe("result");
      expect(result?.skippedStages).toEqual(["a"]);
      expect(await journalCounts(journal, "start")).toEqual({ a: 1, b: 2, c: 2, d: 1 });
      expect(await journalCounts(journal, "done")).toEqual(await checkpointedCompletions(url));
      expect(await journalCounts(journal, "done")).toEqual({ a: 1, b: 1, c: 1, d: 1 });
    },
    TEST_TIMEOUT,
  );

  it.skipIf(store.skip === true)(
    "one branch checkpointed, the other in flight: the resume runs only that branch and the join",
    async () => {
      const url = store.url();
      const journal = join(tmp(), "journal");
      const first = startRunner({ store: url, journal, hangAt: ["c"] });
      await first.until(
        (r) =>
          r.some((e) => e.event === "hang" && e.stage === "c") &&
          r.some((e) => e.event === "checkpoint" && e.stage === "b"),
      );
      first.child.kill("SIGKILL");
      await first.exited;

      const second = startRunner({ store: url, journal, retryLockedForMs: 15_000 });
      await second.exited;
      const result = second.reports.at(-1);
      expect(result?.event, second.describe()).toBe("result");
      expect(result?.skippedStages).toEqual(["a", "b"]);
      expect(await journalCounts(journal, "start")).toEqual({ a: 1, b: 1, c: 2, d: 1 });
      expect(await journalCounts(journal, "done")).toEqual(await checkpointedCompletions(url));
      expect(result?.outputs?.d).toEqual({
        stage: "d",
        seen: { n: 1, b: { n: 1, x: "a" }, c: "c" },
      });
    },
    TEST_TIMEOUT,
  );
});
