/**
 * The conformance kit's harness for the object stores on a real server: a fresh prefix per test
 * in a shared bucket or container, the store opened through the registry the way users open it,
 * and hooks that tamper with stored objects through a second, raw client (the store closes its
 * own client on `close()`).
 */
import type { HarnessParts } from "cairn-pipelines/testing";
import type { ObjectClient } from "../../src/stores/object/objects.js";
import { openStore } from "../../src/stores/registry.js";
import type { CheckpointRecord, CheckpointStore } from "../../src/stores/types.js";

/** How a test opens its stores: a store URL or config for a prefix, and a raw client on it. */
export interface ObjectTarget {
  /** The store spec (strategy + config) for `prefix`. */
  spec(prefix: string): { strategy: string; config: Record<string, unknown> };
  /** A raw client on the same bucket and prefix, for tampering and cleanup. */
  raw(prefix: string): Promise<ObjectClient>;
}

let counter = 0;
/** A prefix unique to this process and call. */
export function uniquePrefix(label: string): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${++counter}`;
}

/** Every key under the client's prefix that starts with `start`. */
export async function allKeys(client: ObjectClient, start: string): Promise<string[]> {
  const keys: string[] = [];
  let continuation: string | undefined;
  do {
    const page = await client.list(start, continuation ? { continuation } : {});
    keys.push(...page.keys);
    continuation = page.continuation;
  } while (continuation);
  return keys;
}

/** An object's body as text; throws when the key does not exist. */
export async function objectText(client: ObjectClient, key: string): Promise<string> {
  const object = await client.get(key);
  if (!object) throw new Error(`no object ${key}`);
  return object.body.toString("utf8");
}

/** The harness factory for `describeStoreConformance`. */
export function objectHarness(label: string, target: ObjectTarget): () => Promise<HarnessParts> {
  return async () => {
    const prefix = uniquePrefix(label);
    const spec = target.spec(prefix);
    const raw = await target.raw(prefix);
    const open = async (): Promise<CheckpointStore> => openStore(spec);
    return {
      store: await open(),
      reopen: open,
      async corruptOutput(pipelineId, hash, body) {
        await raw.put(`runs/${pipelineId}/out/${hash}`, body);
      },
      async tamperCheckpoint(checkpointId, edit) {
        const key = (await allKeys(raw, "runs/")).find((k) => k.includes(`/cp/${checkpointId}.`));
        if (!key) throw new Error(`no checkpoint ${checkpointId} to tamper with`);
        const record = JSON.parse(await objectText(raw, key)) as CheckpointRecord;
        edit(record);
        await raw.put(key, JSON.stringify(record));
      },
      async addGarbage(pipelineId) {
        // An unparseable object the run's manifest references: what a torn or hand-edited write leaves.
        const id = `${pipelineId}_garbage`;
        const suffix = "garbage0";
        await raw.put(`runs/${pipelineId}/cp/${id}.${suffix}.json`, "{not json");
        const tipKey = `tips/${pipelineId}.json`;
        const tip = JSON.parse(await objectText(raw, tipKey)) as { recent: { cps: unknown[][] } };
        tip.recent.cps.push([99, id, suffix, "2024-01-01T00:00:00.099Z"]);
        await raw.put(tipKey, JSON.stringify(tip));
      },
      async cleanup() {
        const keys = await allKeys(raw, "");
        if (keys.length > 0) await raw.deleteMany(keys);
        await raw.close();
      },
    };
  };
}
