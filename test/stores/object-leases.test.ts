/**
 * Leases of the object store (kept in the tip): takeover by the server's clock, by a watched
 * tip ETag that stayed the same for the lease's TTL, and no takeover while the holder's tip
 * keeps changing. Short TTLs; no assertion on how long anything took.
 */
import { makeRecord } from "cairn-pipelines/testing";
import { describe, expect, it } from "vitest";
import { MemoryObjects } from "../../src/stores/object/memory-objects.js";
import type { Lease, LeaseAttempt } from "../../src/stores/types.js";
import { openStore, tipOf } from "./object-fixtures.js";

function held(attempt: LeaseAttempt): Lease {
  if (!attempt.acquired) throw new Error(`not acquired: held by ${attempt.holder.owner}`);
  return attempt.lease;
}

describe("object store leases", () => {
  it("hands over a lease the server's clock says expired, at once, without watching", async () => {
    const objects = new MemoryObjects();
    const a = await openStore(objects);
    const b = await openStore(objects);
    const first = held(await a.acquireLease("clock", "runner-a", 5_000));
    expect((await b.acquireLease("clock", "runner-b", 5_000)).acquired).toBe(false);
    // The server's clock moves past expiry plus the Date header's one-second resolution (and
    // the second the header rounds down).
    objects.clockOffsetMs = 7_500;
    objects.resetCalls();
    const second = held(await b.acquireLease("clock", "runner-b", 5_000));
    expect(second.token).toBe(first.token + 1);
    // One GET decided it: no polling of the tip.
    expect(objects.calls.get).toBe(1);
    const stale = makeRecord("clock", 1);
    await expect(a.putCheckpoint(stale.record, stale.outputs, first)).rejects.toMatchObject({
      code: "CAIRN_LEASE_LOST",
    });
    expect(await a.renewLease(first, 5_000)).toBeUndefined();
  });

  it("hands over a short lease whose tip stayed unchanged for its TTL on the acquirer's clock", async () => {
    const objects = new MemoryObjects();
    const a = await openStore(objects);
    const b = await openStore(objects);
    const first = held(await a.acquireLease("watch", "runner-a", 300));
    objects.resetCalls();
    const second = held(await b.acquireLease("watch", "runner-b", 10_000));
    expect(second.token).toBeGreaterThan(first.token);
    // The server clock could not decide (TTL under 2 s): b polled the tip before taking over.
    expect(objects.calls.get).toBeGreaterThan(1);
    expect(tipOf(objects, "watch").lastToken).toBe(second.token);
    const stale = makeRecord("watch", 1);
    await expect(a.putCheckpoint(stale.record, stale.outputs, first)).rejects.toMatchObject({
      code: "CAIRN_LEASE_LOST",
    });
    await b.putCheckpoint(stale.record, stale.outputs, second);
  });

  it("leaves a short lease to its holder when the tip changes while watched", async () => {
    const objects = new MemoryObjects();
    const a = await openStore(objects);
    const b = await openStore(objects);
    const first = held(await a.acquireLease("alive", "runner-a", 1_500));
    objects.resetCalls();
    const attempt = b.acquireLease("alive", "runner-b", 10_000);
    // Once b has read the tip once, the holder renews: the tip's ETag changes under b's watch.
    while (objects.calls.get === 0) await new Promise((r) => setTimeout(r, 1));
    expect((await a.renewLease(first, 1_500))?.token).toBe(first.token);
    const outcome = await attempt;
    expect(outcome.acquired).toBe(false);
    if (!outcome.acquired) expect(outcome.holder).toMatchObject({ owner: "runner-a", token: first.token });
  });

  it("keeps the token for the same owner, and never reuses one after a release", async () => {
    const objects = new MemoryObjects();
    const a = await openStore(objects);
    const first = held(await a.acquireLease("same", "runner-a", 60_000));
    expect(held(await a.acquireLease("same", "runner-a", 60_000)).token).toBe(first.token);
    await a.releaseLease(first);
    expect(tipOf(objects, "same").lastToken).toBe(first.token);
    const again = held(await a.acquireLease("same", "runner-a", 60_000));
    expect(again.token).toBe(first.token + 1);
    // A fenced write with the released lease is refused.
    const made = makeRecord("same", 1);
    await expect(a.putCheckpoint(made.record, made.outputs, first)).rejects.toMatchObject({
      code: "CAIRN_LEASE_LOST",
    });
  });

  it("fences a holder whose lease the server's clock says expired, even if nobody took it", async () => {
    const objects = new MemoryObjects();
    const a = await openStore(objects);
    const lease = held(await a.acquireLease("expired", "runner-a", 5_000));
    objects.clockOffsetMs = 7_500;
    // A fresh store reads the tip (and so the server's time) before checking the fence.
    const reader = await openStore(objects);
    const made = makeRecord("expired", 1);
    await expect(reader.putCheckpoint(made.record, made.outputs, lease)).rejects.toMatchObject({
      code: "CAIRN_LEASE_LOST",
    });
    expect(await reader.getLease("expired")).toBeUndefined();
  });
});
