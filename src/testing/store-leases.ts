/**
 * The conformance suite, part 3: leases and fencing. One runner per run; a runner whose lease
 * was taken over can no longer write checkpoints for that run.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { CheckpointStore, Lease } from "../index.js";
import { makeRecord } from "./store-contract.js";
import type { StoreHarness } from "./suite.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function expectAcquired(attempt: Awaited<ReturnType<CheckpointStore["acquireLease"]>>): Lease {
  if (!attempt.acquired) throw new Error(`lease not acquired: held by ${attempt.holder.owner}`);
  return attempt.lease;
}

/** Lease tests of the conformance suite. */
export function leaseTests(harness: () => StoreHarness): void {
  describe("leases and fencing", () => {
    let store: CheckpointStore;
    let p: string;
    beforeEach(() => {
      store = harness().store;
      p = harness().runId("lease");
    });

    it("gives the run to one owner at a time", async () => {
      const a = expectAcquired(await store.acquireLease(p, "runner-a", 10_000));
      expect(a).toMatchObject({ pipelineId: p, owner: "runner-a" });
      expect(a.token).toBeGreaterThan(0);
      expect(a.expiresAt.getTime()).toBeGreaterThan(Date.now());
      const b = await store.acquireLease(p, "runner-b", 10_000);
      expect(b.acquired).toBe(false);
      if (!b.acquired) expect(b.holder).toMatchObject({ owner: "runner-a", token: a.token });
      // Leases are per run.
      expectAcquired(await store.acquireLease(`${p}-other`, "runner-b", 10_000));
    });

    it("lets exactly one of many concurrent acquirers win", async () => {
      const attempts = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.acquireLease(p, `runner-${i}`, 10_000)),
      );
      expect(attempts.filter((x) => x.acquired)).toHaveLength(1);
    });

    it("renews a held lease and keeps its token", async () => {
      const a = expectAcquired(await store.acquireLease(p, "runner-a", 200));
      const renewed = await store.renewLease(a, 10_000);
      expect(renewed?.token).toBe(a.token);
      expect(renewed?.expiresAt.getTime()).toBeGreaterThan(a.expiresAt.getTime());
      await sleep(250);
      expect((await store.acquireLease(p, "runner-b", 1000)).acquired).toBe(false);
    });

    it("hands an expired lease to a new owner with a larger token and fences the old one", async () => {
      const a = expectAcquired(await store.acquireLease(p, "runner-a", 100));
      const first = makeRecord(p, 1);
      await store.putCheckpoint(first.record, first.outputs, a);
      await sleep(150);
      const b = expectAcquired(await store.acquireLease(p, "runner-b", 10_000));
      expect(b.token).toBeGreaterThan(a.token);
      expect(await store.renewLease(a, 10_000)).toBeUndefined();
      const stale = makeRecord(p, 2, { outputs: { s: '"stale"' } });
      await expect(store.putCheckpoint(stale.record, stale.outputs, a)).rejects.toMatchObject({
        code: "CAIRN_LEASE_LOST",
      });
      expect(await store.getCheckpoint(stale.record.metadata.checkpoint_id)).toBeUndefined();
      const fresh = makeRecord(p, 2);
      await store.putCheckpoint(fresh.record, fresh.outputs, b);
      expect((await store.listCheckpoints(p)).map((e) => e.ok && e.metadata.checkpoint_id)).toEqual([
        first.record.metadata.checkpoint_id,
        fresh.record.metadata.checkpoint_id,
      ]);
    });

    it("never reuses a token after a release", async () => {
      const a = expectAcquired(await store.acquireLease(p, "runner-a", 10_000));
      await store.releaseLease(a);
      const b = expectAcquired(await store.acquireLease(p, "runner-b", 10_000));
      expect(b.token).toBeGreaterThan(a.token);
      await store.releaseLease(a); // not held by a any more: changes nothing
      expect((await store.acquireLease(p, "runner-c", 10_000)).acquired).toBe(false);
      const late = makeRecord(p, 1);
      await expect(store.putCheckpoint(late.record, late.outputs, a)).rejects.toMatchObject({
        code: "CAIRN_LEASE_LOST",
      });
    });

    it("refuses a fenced write to a run that has no lease", async () => {
      const ghost: Lease = {
        pipelineId: p,
        owner: "nobody",
        token: 1,
        expiresAt: new Date(Date.now() + 1000),
      };
      const made = makeRecord(p, 1);
      await expect(store.putCheckpoint(made.record, made.outputs, ghost)).rejects.toMatchObject({
        code: "CAIRN_LEASE_LOST",
      });
      await store.putCheckpoint(made.record, made.outputs);
      expect(await store.listCheckpoints(p)).toHaveLength(1);
    });

    it("reads the current lease without taking or changing it", async () => {
      expect(await store.getLease(p)).toBeUndefined();
      const a = expectAcquired(await store.acquireLease(p, "runner-a", 10_000));
      const seen = await store.getLease(p);
      expect(seen).toMatchObject({ pipelineId: p, owner: "runner-a", token: a.token });
      expect(seen?.expiresAt.getTime()).toBeGreaterThan(Date.now());
      // Reading is no acquire: the holder keeps it, another owner is still refused.
      expect((await store.acquireLease(p, "runner-b", 10_000)).acquired).toBe(false);
      expect((await store.renewLease(a, 10_000))?.token).toBe(a.token);
      await store.releaseLease(a);
      expect(await store.getLease(p)).toBeUndefined();
    });

    it("reads an expired lease as absent", async () => {
      expectAcquired(await store.acquireLease(p, "runner-a", 100));
      await sleep(200);
      expect(await store.getLease(p)).toBeUndefined();
    });

    it("creates nothing when reading the lease of an unknown run", async () => {
      expect(await store.getLease(p)).toBeUndefined();
      expect(await store.listPipelineIds()).not.toContain(p);
      expect(await store.getRunHead(p)).toBeUndefined();
      expect(await store.listCheckpoints(p)).toEqual([]);
      // The first acquirer after the read still gets the first token a run gets.
      const fresh = expectAcquired(await store.acquireLease(`${p}-fresh`, "runner-a", 10_000));
      expect(expectAcquired(await store.acquireLease(p, "runner-a", 10_000)).token).toBe(fresh.token);
      await expect(store.getLease("../x")).rejects.toMatchObject({ code: "CAIRN_INVALID_NAME" });
    });

    it("rejects bad lease arguments", async () => {
      await expect(store.acquireLease(p, "", 1000)).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
      await expect(store.acquireLease(p, "x", 0)).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
      await expect(store.acquireLease("../x", "x", 1000)).rejects.toMatchObject({
        code: "CAIRN_INVALID_NAME",
      });
    });
  });
}
