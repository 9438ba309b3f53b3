import type { CheckpointRecord } from "../../src/stores/types.js";
import type { RawPiece } from "./at-rest-stores.js";
import { allKeys, objectText } from "./object-harness.js";
import { rawObjects } from "./object-servers.js";

/** The raw hooks of the object store at `url`; `close` releases the raw client. */
export async function objectParts(url: string) {
  const raw = await rawObjects(url);
  /** The object of a checkpoint, whichever run holds it (`runs/<run>/cp/<id>.<suffix>.json`). */
  const keyOf = async (checkpointId: string) => {
    const key = (await allKeys(raw, "runs/")).find((k) => k.includes(`/cp/${checkpointId}.`));
    if (!key) throw new Error(`no object of checkpoint ${checkpointId}`);
    return key;
  };
  const outPrefix = (pipelineId: string) => `runs/${pipelineId}/out/`;
  return {
    async dump() {
      const pieces: RawPiece[] = [];
      for (const key of await allKeys(raw, "")) {
        const object = await raw.get(key);
        if (object) pieces.push({ where: key, bytes: object.body });
      }
      return pieces;
    },
    async body(checkpointId: string) {
      return (JSON.parse(await objectText(raw, await keyOf(checkpointId))) as CheckpointRecord).body;
    },
    async setBody(checkpointId: string, body: string) {
      const key = await keyOf(checkpointId);
      const record = JSON.parse(await objectText(raw, key)) as CheckpointRecord;
      await raw.put(key, JSON.stringify({ ...record, body }));
    },
    async outputs(pipelineId: string) {
      const out = new Map<string, string>();
      for (const key of await allKeys(raw, outPrefix(pipelineId)))
        out.set(key.slice(outPrefix(pipelineId).length), await objectText(raw, key));
      return out;
    },
    async setOutput(pipelineId: string, hash: string, body: string) {
      await raw.put(`${outPrefix(pipelineId)}${hash}`, body);
    },
    async runKey(pipelineId: string) {
      // The key record lives in the run's tip object (`runKey`), not in an object of its own.
      const tip = await raw.get(`tips/${pipelineId}.json`);
      if (!tip) return undefined;
      return (JSON.parse(tip.body.toString("utf8")) as { runKey?: string | null }).runKey ?? undefined;
    },
    async removeAll() {
      const keys = await allKeys(raw, "");
      if (keys.length > 0) await raw.deleteMany(keys);
      await raw.close();
    },
  };
}
