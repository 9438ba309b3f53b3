/**
 * The console tests' stores hold what those tests expect: checked here through the manager, so a
 * failing browser test points at the console, not at its fixture.
 */
import { describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { fillConsoleStore } from "../support/console-stores.js";
import { freshStores } from "../support/fresh-stores.js";

const stores = freshStores("ui-fixture");
const targets: [string, (() => string) | undefined][] = [
  ["sqlite", stores.sqlite],
  ["file", stores.file],
  ["postgres", stores.postgres],
];

describe.each(targets)("console fixture on %s", (_name, url) => {
  it.skipIf(!url)(
    "holds the runs, the corrupt checkpoint, the 1 MB output and the compare pair",
    async () => {
      const fixture = await fillConsoleStore((url as () => string)());
      const manager = new CheckpointManager({ store: fixture.url });
      try {
        const status = async (id: string) => (await manager.getRunSummary(id))?.status;
        expect(await status(fixture.runs.completed)).toBe("completed");
        expect(await status(fixture.runs.resumed)).toBe("completed");
        expect((await manager.getRunSummary(fixture.runs.resumed))?.resumeCount).toBe(1);
        expect(await status(fixture.runs.failed)).toBe("failed");
        const resumedHistory = await manager.getCheckpointHistory(fixture.runs.resumed);
        expect(
          resumedHistory.some((m) => m.status === "resumed" && m.errorMessage === fixture.failedError),
        ).toBe(true);

        const check = await manager.validateCheckpoint(fixture.corruptCheckpointId);
        expect(check.valid).toBe(false);

        const large = await manager.loadCheckpoint(fixture.largeCheckpointId);
        expect(JSON.stringify(large.agentOutputs[fixture.largeStage]).length).toBeGreaterThan(1_000_000);

        const a = await manager.loadCheckpoint(fixture.compare.a);
        const b = await manager.loadCheckpoint(fixture.compare.b);
        expect({ ...a.stateData, threshold: 0 }).toEqual({ ...b.stateData, threshold: 0 });
        expect([a.stateData.threshold, b.stateData.threshold]).toEqual([
          fixture.compare.before,
          fixture.compare.after,
        ]);
      } finally {
        await manager.close();
      }
    },
  );
});
