/**
 * The published conformance kit over the object store's logic (`ObjectStore`) on `MemoryObjects`,
 * the in-memory bucket with exact conditional semantics. One bucket per test, shared by `reopen`,
 * so a second store instance sees the same objects (as a second process would).
 *
 * No `dropIndexEntry` hook: the run's manifest (in its tip) is its only index, and a cp object
 * the manifest does not reference is garbage from a lost or crashed write, which
 * `rebuildIndexes` removes rather than puts back (it cannot tell it from a write never committed).
 */
import { describeStoreConformance } from "cairn-pipelines/testing";
import { MemoryObjects } from "../../src/stores/object/memory-objects.js";
import { ObjectStore } from "../../src/stores/object/object-store.js";
import type { CheckpointRecord } from "../../src/stores/types.js";

/** The key of a run's cp object for an id (its suffix is random: found among the keys). */
function cpKeyOf(objects: MemoryObjects, pipelineId: string, checkpointId: string): string | undefined {
  return objects.keys(`runs/${pipelineId}/cp/${checkpointId}.`).find((k) => /\.[0-9a-z]{8}\.json$/.test(k));
}

describeStoreConformance("object (memory)", () => {
  const objects = new MemoryObjects();
  const open = () => new ObjectStore({ strategy: "memobj", client: objects });
  return {
    store: open(),
    reopen: async () => open(),
    async corruptOutput(pipelineId, hash, body) {
      objects.poke(`runs/${pipelineId}/out/${hash}`, body);
    },
    async tamperCheckpoint(checkpointId, edit) {
      const key = objects.keys("runs/").find((k) => k.includes(`/cp/${checkpointId}.`));
      if (!key) throw new Error(`no checkpoint ${checkpointId} to tamper with`);
      const record = JSON.parse(objects.peek(key) as string) as CheckpointRecord;
      edit(record);
      objects.poke(key, JSON.stringify(record));
    },
    async addGarbage(pipelineId) {
      // An unparseable object the run's manifest references: what a torn or hand-edited write leaves.
      const id = `${pipelineId}_garbage`;
      const suffix = "garbage0";
      objects.poke(`runs/${pipelineId}/cp/${id}.${suffix}.json`, "{not json");
      const tipKey = `tips/${pipelineId}.json`;
      const tip = JSON.parse(objects.peek(tipKey) as string) as {
        recent: { cps: [number, string, string, string][] };
      };
      tip.recent.cps.push([99, id, suffix, "2024-01-01T00:00:00.099Z"]);
      objects.poke(tipKey, JSON.stringify(tip));
    },
    checkpointLocation(pipelineId, checkpointId) {
      return (
        cpKeyOf(objects, pipelineId, checkpointId) ?? `runs/${pipelineId}/cp/${checkpointId}.aaaaaaaa.json`
      );
    },
  };
});
