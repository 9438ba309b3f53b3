import { afterEach, describe, expect, it } from "vitest";
import { CheckpointManager, type CheckpointManagerOptions, replicate } from "../../src/index.js";
import { openStore } from "../../src/stores/registry.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { ring } from "../support/at-rest-runs.js";
import { freshStores } from "../support/fresh-stores.js";
import { expectSameRuns, writeRun, writeStage } from "../support/replica.js";

const fresh = freshStores("replicate-matrix");

const closing: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(closing.splice(0).map((c) => c.close()));
});

/** A fresh store URL of each kind. */
const STORES: Record<string, (() => string) | undefined> = {
  memory: fresh.memory,
  file: fresh.file,
  sqlite: fresh.sqlite,
  postgres: fresh.postgres,
  redis: fresh.redis,
};

const KINDS = Object.keys(STORES);
const PAIRS = KINDS.flatMap((from) => KINDS.filter((to) => to !== from).map((to) => [from, to] as const));

function manager(store: string, options: Omit<CheckpointManagerOptions, "store"> = {}): CheckpointManager {
  const m = new CheckpointManager({ store, ...options });
  closing.push(m);
  return m;
}

async function opened(url: string): Promise<CheckpointStore> {
  const store = await openStore(url);
  closing.push(store);
  return store;
}

describe.each(PAIRS)("replicate %s → %s", (fromKind, toKind) => {
  const skip = !STORES[fromKind] || !STORES[toKind];
  it.skipIf(skip)("the target ends up with the source's runs, as stored, and validates", async () => {
    const from = (STORES[fromKind] as () => string)();
    const to = (STORES[toKind] as () => string)();
    const plain = manager(from);
    const sealed = manager(from, { encryption: ring(), compression: "gzip" });
    const a = await writeRun(plain, "run-a", 3);
    await writeRun(plain, "run-b", 2);
    await writeRun(sealed, "run-enc", 3);

    const first = await replicate({ from, to });
    expect(first).toMatchObject({ checkpointsCopied: 8, corrupt: [], diverged: [], syncs: 1 });

    await plain.updateCheckpointStatus(a[2] as string, "failed", "boom");
    await (await plain.getStore()).deleteCheckpoints("run-a", [a[0] as string]);
    await (await plain.getStore()).deleteRun("run-b");
    await writeStage(sealed, "run-enc", ["stage1", "stage2", "stage3", "stage4"], 3);
    await writeRun(plain, "run-c", 2);

    const second = await replicate({ from, to });
    expect(second).toMatchObject({
      checkpointsCopied: 3,
      statusesCopied: 1,
      checkpointsDeleted: 1,
      runsDeleted: 1,
      corrupt: [],
      diverged: [],
    });
    const source = await opened(from);
    const target = await opened(to);
    await expectSameRuns(source, target);

    const validations = await manager(to, { encryption: ring() }).validateAllRuns();
    expect(validations.map((v) => [v.pipelineId, v.valid])).toEqual([
      ["run-a", true],
      ["run-c", true],
      ["run-enc", true],
    ]);
  });
});
