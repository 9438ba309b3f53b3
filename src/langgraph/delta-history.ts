/**
 * `getDeltaChannelHistory` without building a tuple per ancestor: LangGraph's default walk loads
 * every channel value of every ancestor; this one reads the ancestors' records and pending
 * writes, and loads only the values it returns, in one request.
 */
import type { CheckpointPendingWrite, DeltaChannelHistory } from "@langchain/langgraph-checkpoint";
import { CheckpointCorruptError } from "../core/errors.js";
import { threadCheckpointId } from "./ids.js";
import { type CheckpointState, outputValue } from "./records.js";
import type { ReadRecord } from "./thread-store.js";
import { isDefaultSerde, type ReadThread, resolveWrites } from "./tuple.js";

/** The checkpoint LangGraph names as `r`'s parent, its link checked; undefined when absent. */
async function parentOf(
  rt: ReadThread,
  r: ReadRecord<CheckpointState>,
): Promise<ReadRecord<CheckpointState> | undefined> {
  const m = r.record.metadata;
  if (r.state.parent_id === null) return undefined;
  const id = m.parent_checkpoint_id ?? threadCheckpointId(m.pipeline_id, r.state.parent_id);
  const parent = await rt.threads.read(id);
  if (parent?.state.kind !== "checkpoint") return undefined;
  if (m.parent_checkpoint_id !== null && parent.record.metadata.checksum !== m.parent_checksum)
    throw new CheckpointCorruptError(m.checkpoint_id, `its parent ${id} does not match the parent checksum`);
  return parent as ReadRecord<CheckpointState>;
}

/**
 * For each channel: the pending writes on the path from `start`'s parent up (oldest first), down
 * to the nearest ancestor holding a value for it, and that value as the seed.
 */
export async function deltaChannelHistory(
  rt: ReadThread,
  start: ReadRecord<CheckpointState> | undefined,
  channels: readonly string[],
): Promise<Record<string, DeltaChannelHistory>> {
  if (channels.length === 0) return {};
  const remaining = new Set(channels);
  // Newest first while walking up; reversed at the end, as LangGraph's own walk does.
  const collected = new Map<string, { taskId: string; address: string }[]>(channels.map((ch) => [ch, []]));
  const seeds = new Map<string, string>();
  let runId = start?.record.metadata.pipeline_id ?? "";
  let lastId = start?.record.metadata.checkpoint_id ?? "";
  for (
    let cur = start && (await parentOf(rt, start));
    cur && remaining.size > 0;
    cur = await parentOf(rt, cur)
  ) {
    runId = cur.record.metadata.pipeline_id;
    lastId = cur.record.metadata.checkpoint_id;
    const slots = resolveWrites(rt.peer, await rt.threads.writesOf(lastId));
    for (const ch of remaining) {
      const block = slots.filter((slot) => slot.channel === ch);
      for (let i = block.length - 1; i >= 0; i--) {
        const slot = block[i] as (typeof block)[number];
        collected.get(ch)?.push({ taskId: slot.taskId, address: slot.address });
      }
    }
    const map = await rt.threads.channelMap(cur);
    for (const ch of [...remaining]) {
      const address = map.get(ch)?.[1];
      if (address) {
        seeds.set(ch, address);
        remaining.delete(ch);
      }
    }
  }
  const addresses = [...seeds.values()];
  for (const list of collected.values()) for (const w of list) addresses.push(w.address);
  const texts = await rt.threads.outputs(runId, addresses, lastId);
  const value = (address: string) =>
    outputValue(rt.serde, texts.get(address) as string, lastId, isDefaultSerde(rt));
  const result: Record<string, DeltaChannelHistory> = {};
  for (const ch of channels) {
    const writes: CheckpointPendingWrite[] = [];
    for (const w of (collected.get(ch) ?? []).slice().reverse())
      writes.push([w.taskId, ch, await value(w.address)]);
    const entry: DeltaChannelHistory = { writes };
    const seed = seeds.get(ch);
    if (seed !== undefined) entry.seed = await value(seed);
    result[ch] = entry;
  }
  return result;
}
