/**
 * Random operations on one run (puts, replacing imports, deletions of checkpoints, outputs and
 * the run) through several store instances while the bucket fails calls
 * at random (before a write, after it with the answer lost, with an unknown outcome). After
 * every step, with faults off: nothing partial is visible. Every listed checkpoint parses, can
 * be read by id and has its outputs; every put that reported success is listed unless a later
 * deletion removed it; nothing is listed that no put attempted. Seeded, so a failure replays.
 */
import { makeRecord } from "cairn-pipelines/testing";
import { describe, expect, it } from "vitest";
import { StoreUnavailableError, TipMovedError } from "../../src/core/errors.js";
import { MemoryObjects, type ObjectOperation } from "../../src/stores/object/memory-objects.js";
import type { ObjectStore } from "../../src/stores/object/object-store.js";
import type { CheckpointRecord, OutputRecord } from "../../src/stores/types.js";
import { openStore } from "./object-fixtures.js";

/** A small seeded generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RUN = "faulty";
const OPS: ObjectOperation[] = ["get", "put", "put", "put", "delete", "deleteMany", "list"];

describe("object store under random faults", () => {
  it.each(Array.from({ length: 12 }, (_, i) => i + 1))("shows nothing partial (seed %i)", async (seed) => {
    const rand = random(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
    const objects = new MemoryObjects();
    const stores: ObjectStore[] = [];
    for (let i = 0; i < 3; i++) stores.push(await openStore(objects));
    const attempted = new Map<string, { record: CheckpointRecord; outputs: OutputRecord[] }>();
    const committed = new Set<string>();
    /** Output hashes a deleteOutputs named since a write last stored them: present or not. */
    const maybeMissing = new Set<string>();
    let sequence = 0;

    for (let step = 0; step < 120; step++) {
      const store = pick(stores);
      if (rand() < 0.5) {
        objects.failNext(pick(OPS), 1 + Math.floor(rand() * 2), {
          afterApply: rand() < 0.3,
          unknownOutcome: rand() < 0.3,
        });
      }
      const op = rand();
      try {
        if (op < 0.7) {
          sequence++;
          const made = makeRecord(RUN, sequence, { outputs: { [`s${sequence % 4}`]: `"${sequence % 6}"` } });
          attempted.set(made.record.metadata.checkpoint_id, made);
          const latest = rand() < 0.5 ? await store.getLatestCheckpoint(RUN) : undefined;
          const options = latest ? { expectedTip: latest.metadata.checkpoint_id } : undefined;
          await store.putCheckpoint(made.record, made.outputs, undefined, options);
          committed.add(made.record.metadata.checkpoint_id);
          for (const o of made.outputs) maybeMissing.delete(o.hash);
        } else if (op < 0.75) {
          const run = [1, 2, 3].map((k) => {
            sequence++;
            return makeRecord(RUN, k, { outputs: { i: `"${sequence % 5}"` } });
          });
          for (const made of run) attempted.set(made.record.metadata.checkpoint_id, made);
          committed.clear();
          await store.importRun(RUN, run, { replace: true });
          for (const made of run) {
            committed.add(made.record.metadata.checkpoint_id);
            for (const o of made.outputs) maybeMissing.delete(o.hash);
          }
        } else if (op < 0.8) {
          const hashes = [
            ...new Set([...attempted.values()].flatMap((m) => m.outputs.map((o) => o.hash))),
          ].filter(() => rand() < 0.3);
          for (const h of hashes) maybeMissing.add(h);
          await store.deleteOutputs(RUN, hashes);
        } else if (op < 0.88) {
          const victims = [...committed].filter(() => rand() < 0.3);
          // Gone or not when the call fails: either is allowed from then on.
          for (const id of victims) committed.delete(id);
          await store.deleteCheckpoints(RUN, victims);
        } else {
          committed.clear();
          await store.deleteRun(RUN);
        }
      } catch (error) {
        if (!(error instanceof StoreUnavailableError || error instanceof TipMovedError)) throw error;
      }
      // Faults off: check what a reader sees.
      objects.clearFaults();
      const reader = await openStore(objects);
      const listing = await reader.listCheckpoints(RUN);
      for (const entry of listing) {
        if (!entry.ok) throw new Error(`step ${step}: corrupt entry ${JSON.stringify(entry.corrupt)}`);
        const made = attempted.get(entry.metadata.checkpoint_id);
        expect(made, `step ${step}: listed ${entry.metadata.checkpoint_id} was never put`).toBeDefined();
        expect(await reader.getCheckpoint(entry.metadata.checkpoint_id)).toEqual(made?.record);
        const hashes = (made?.outputs.map((o) => o.hash) ?? []).filter((h) => !maybeMissing.has(h));
        expect((await reader.getOutputs(RUN, hashes)).size, `step ${step}: outputs`).toBe(hashes.length);
      }
      const listed = new Set(listing.map((e) => e.ok && e.metadata.checkpoint_id));
      for (const id of committed) expect(listed.has(id), `step ${step}: ${id} reported stored`).toBe(true);
      const newest = listing.at(-1);
      expect((await reader.getLatestCheckpoint(RUN))?.metadata.checkpoint_id).toBe(
        newest?.ok ? newest.metadata.checkpoint_id : undefined,
      );
    }
  });
});

describe("object store: concurrent writers under random faults", () => {
  it.each(Array.from({ length: 10 }, (_, i) => i + 1))("keeps one linear chain (seed %i)", async (seed) => {
    const rand = random(seed);
    const objects = new MemoryObjects();
    const stores = await Promise.all(Array.from({ length: 6 }, () => openStore(objects)));
    const won = new Set<string>();
    /** Every put tried: one that failed as unreachable may be stored or not. */
    const tried = new Set<string>();
    await Promise.all(
      stores.map(async (store, w) => {
        for (let round = 0; round < 8; round++) {
          if (rand() < 0.3) {
            objects.failNext(OPS[Math.floor(rand() * OPS.length)] as ObjectOperation, 1, {
              afterApply: rand() < 0.5,
              unknownOutcome: rand() < 0.5,
            });
          }
          try {
            const latest = await store.getLatestCheckpoint(RUN);
            const made = makeRecord(RUN, (latest?.metadata.sequence ?? 0) + 1, {
              outputs: { [`w${w}`]: `"${w}-${round}"` },
            });
            tried.add(made.record.metadata.checkpoint_id);
            await store.putCheckpoint(made.record, made.outputs, undefined, {
              expectedTip: latest?.metadata.checkpoint_id ?? null,
            });
            won.add(made.record.metadata.checkpoint_id);
          } catch (error) {
            if (!(error instanceof StoreUnavailableError || error instanceof TipMovedError)) throw error;
          }
        }
      }),
    );
    objects.clearFaults();
    const listing = await (await openStore(objects)).listCheckpoints(RUN);
    const listed = listing.map((e) => {
      if (!e.ok) throw new Error(`corrupt entry ${JSON.stringify(e.corrupt)}`);
      return e.metadata;
    });
    expect(listed.map((m) => m.sequence)).toEqual(listed.map((_, i) => i + 1));
    for (const id of won) expect(listed.map((m) => m.checkpoint_id)).toContain(id);
    for (const m of listed) expect(tried.has(m.checkpoint_id)).toBe(true);
  });
});
