import { describe, expect, it } from "vitest";
import { CheckpointManager, compareStores, replicate } from "../../src/index.js";
import { freshStores } from "../support/fresh-stores.js";
import { azureUp, azureUrl, objectPrefix, s3Up, s3Url } from "../support/object-servers.js";
import { writeRun, writeStage } from "../support/replica.js";

const fresh = freshStores("cloud-pairs");

/** A fresh, empty store of each kind; undefined when its server is down. */
const STORES: Record<string, (() => string) | undefined> = {
  s3: s3Up ? () => s3Url(objectPrefix("pairs")) : undefined,
  azure: azureUp ? () => azureUrl(objectPrefix("pairs")) : undefined,
  file: fresh.file,
  sqlite: fresh.sqlite,
  postgres: fresh.postgres,
  redis: fresh.redis,
  memory: fresh.memory,
};

const CLOUDS = ["s3", "azure"];
const OTHERS = ["file", "sqlite", "postgres", "redis", "memory"];
const PAIRS = [
  ...CLOUDS.flatMap((cloud) => OTHERS.flatMap((other) => [[cloud, other] as const, [other, cloud] as const])),
  ["s3", "azure"] as const,
  ["azure", "s3"] as const,
];

/** What a test opened, closed when it finishes (the pairs run concurrently: one list each). */
type Closing = { close(): Promise<void> }[];

function manager(closing: Closing, store: string): CheckpointManager {
  const m = new CheckpointManager({ store });
  closing.push(m);
  return m;
}

// Concurrent (up to vitest's maxConcurrency, 5): each pair has its own stores, and one at a time
// the 22 pairs would spend most of the file waiting on the object servers' round trips.
describe.concurrent.each(PAIRS)("replicate %s → %s", (fromKind, toKind) => {
  const skip = !STORES[fromKind] || !STORES[toKind];
  it.skipIf(skip)(
    "after writes, a status change and deletions, the stores compare equal",
    {
      timeout: 60_000,
    },
    async ({ onTestFinished }) => {
      const closing: Closing = [];
      onTestFinished(async () => {
        await Promise.all(closing.map((c) => c.close()));
      });
      const from = (STORES[fromKind] as () => string)();
      const to = (STORES[toKind] as () => string)();
      const writer = manager(closing, from);
      const a = await writeRun(writer, "run-a", 3);
      await writeRun(writer, "run-b", 1);
      expect(await replicate({ from, to })).toMatchObject({
        checkpointsCopied: 4,
        corrupt: [],
        diverged: [],
      });

      await writeStage(writer, "run-a", ["stage1", "stage2", "stage3", "stage4"], 3);
      await writeRun(writer, "run-c", 1);
      await writer.updateCheckpointStatus(a[2] as string, "failed", "boom");
      const store = await writer.getStore();
      await store.deleteCheckpoints("run-a", [a[0] as string]);
      await store.deleteRun("run-b");
      expect(await replicate({ from, to })).toMatchObject({
        checkpointsCopied: 2,
        statusesCopied: 1,
        checkpointsDeleted: 1,
        runsDeleted: 1,
        corrupt: [],
        diverged: [],
      });

      const comparison = await compareStores(from, to);
      expect(comparison, JSON.stringify(comparison)).toMatchObject({ equal: true, runsCompared: 2 });
      const validations = await manager(closing, to).validateAllRuns();
      expect(validations.map((v) => [v.pipelineId, v.valid])).toEqual([
        ["run-a", true],
        ["run-c", true],
      ]);
    },
  );
});
