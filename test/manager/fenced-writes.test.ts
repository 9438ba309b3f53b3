/**
 * Writes reuse the checkpoint they just wrote as the next parent instead of reading it back
 * from the store; the store's tip check (expectedTip) catches a parent that moved.
 */
import { expect, it } from "vitest";
import { CheckpointManager, type CheckpointStore, type Lease } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

function countingStore() {
  const inner = new MemoryStore();
  const calls = { latest: 0, list: 0 };
  const store = new Proxy(inner, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== "function") return value;
      // Count calls, not property reads: the manager's store wrapper reads each method once.
      return (...args: unknown[]) => {
        if (key === "getLatestCheckpoint") calls.latest++;
        if (key === "listCheckpoints") calls.list++;
        return value.apply(target, args);
      };
    },
  }) as CheckpointStore;
  return { store, calls };
}

const input = (pipelineId: string, i: number) => ({
  pipelineId,
  stageName: `s${i}`,
  stageIndex: i,
  agentOutputs: Object.fromEntries(Array.from({ length: i + 1 }, (_, k) => [`s${k}`, { k }])),
  status: "completed" as const,
});

async function lease(store: CheckpointStore, run: string, owner: string): Promise<Lease> {
  const attempt = await store.acquireLease(run, owner, 60_000);
  if (!attempt.acquired) throw new Error("not acquired");
  return attempt.lease;
}

it("chains fenced writes without reading the parent back, and the chain verifies", async () => {
  const { store, calls } = countingStore();
  const manager = new CheckpointManager({ store });
  const fence = await lease(store, "run", "me");
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await manager.createCheckpoint(input("run", i), { fence }));
  expect(calls.latest).toBe(1); // only the first write looked the parent up
  const history = await manager.getCheckpointHistory("run");
  expect(history.map((m) => m.sequence)).toEqual([5, 4, 3, 2, 1]);
  expect(history.map((m) => m.parentCheckpointId)).toEqual([ids[3], ids[2], ids[1], ids[0], undefined]);
  for (const id of ids) expect((await manager.validateCheckpoint(id)).valid).toBe(true);
  // Each output was stored once, although every checkpoint holds all earlier ones.
  expect(await store.listOutputHashes("run")).toHaveLength(5);
});

it("reads the parent again only when the store says the tip moved, or after a failed write", async () => {
  const { store, calls } = countingStore();
  const manager = new CheckpointManager({ store });
  const first = await lease(store, "run", "me");
  await manager.createCheckpoint(input("run", 0), { fence: first });
  expect(calls.latest).toBe(1);
  // Another manager (another process) writes: this manager's next write is refused by the
  // store's tip check, reads the run again and chains after the other's checkpoint.
  await new CheckpointManager({ store }).createCheckpoint(input("run", 1));
  const before = calls.latest;
  await manager.createCheckpoint(input("run", 2));
  expect(calls.latest).toBe(before + 1);
  // A new lease does not invalidate what this manager wrote last: the store checks the tip.
  await store.releaseLease(first);
  const second = await lease(store, "run", "someone-else");
  await manager.createCheckpoint(input("run", 3), { fence: second });
  expect(calls.latest).toBe(before + 1);
  // A stale fence fails and forgets the cached parent; the next write reads it again.
  await expect(manager.createCheckpoint(input("run", 4), { fence: first })).rejects.toMatchObject({
    code: "CAIRN_LEASE_LOST",
  });
  await manager.createCheckpoint(input("run", 4), { fence: second });
  expect(calls.latest).toBe(before + 3);
  const history = await manager.getCheckpointHistory("run");
  expect(history.map((m) => m.sequence)).toEqual([5, 4, 3, 2, 1]);
  for (let i = 0; i < history.length - 1; i++)
    expect(history[i]?.parentCheckpointId).toBe(history[i + 1]?.checkpointId);
});
