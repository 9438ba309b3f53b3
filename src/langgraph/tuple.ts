/**
 * A thread record as LangGraph's `CheckpointTuple`: the checkpoint with its channel values, its
 * metadata, its parent's config and its pending writes, every value verified against its address.
 */
import type {
  CheckpointPendingWrite,
  CheckpointTuple,
  SerializerProtocol,
} from "@langchain/langgraph-checkpoint";
import { CheckpointCorruptError } from "../core/errors.js";
import { threadCheckpointId } from "./ids.js";
import {
  type CheckpointState,
  fromSerdeValue,
  outputValue,
  plainJson,
  type WritesState,
  writeKey,
} from "./records.js";
import type { ReadRecord, ThreadStore } from "./thread-store.js";

type Peer = typeof import("@langchain/langgraph-checkpoint");

/** What building tuples needs: the store, the saver's serde, LangGraph's helpers. */
export interface ReadThread {
  threads: ThreadStore;
  serde: SerializerProtocol;
  peer: Peer;
  nextVersion: () => number;
}

/** One pending write as stored: which record slot, and the address of its value. */
interface Slot {
  taskId: string;
  taskPath: string;
  channel: string;
  idx: number;
  address: string;
  record: string;
}

/**
 * The pending writes of a checkpoint by LangGraph's rules: for one (task, index), the first write
 * stands, except on the special channels (negative index), where the last one does; sorted as
 * LangGraph sorts them (task path, task id, index).
 */
export function resolveWrites(peer: Peer, records: readonly ReadRecord<WritesState>[]): Slot[] {
  const slots = new Map<string, Slot>();
  for (const r of records) {
    const id = r.record.metadata.checkpoint_id;
    for (const [i, entry] of r.state.writes.entries()) {
      const [channel, idx] = entry;
      const address = r.body.output_refs[writeKey(i)];
      if (address === undefined) throw new CheckpointCorruptError(id, `write ${i} has no value`);
      const key = `${r.state.task_id}\u0000${idx}`;
      if (idx >= 0 && slots.has(key)) continue;
      slots.set(key, {
        taskId: r.state.task_id,
        taskPath: r.state.task_path,
        channel,
        idx,
        address,
        record: id,
      });
    }
  }
  const sortKey = (s: Slot) => peer.writesSortKey(s.taskPath, s.taskId, s.idx);
  return [...slots.values()].sort((a, b) => peer.compareWritesSortKeys(sortKey(a), sortKey(b)));
}

/** True when the saver uses LangGraph's default serde, whose plain-JSON values may skip it. */
export const isDefaultSerde = (rt: ReadThread) => rt.serde.constructor === rt.peer.JsonPlusSerializer;

/** Defines `target[key]` as the value of `json`, parsed on first read and then a plain property. */
function lazyValue(target: Record<string, unknown>, key: string, json: string): void {
  const settle = (value: unknown) => {
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
    return value;
  };
  Object.defineProperty(target, key, {
    enumerable: true,
    configurable: true,
    get: () => settle(JSON.parse(json)),
    set: settle,
  });
}

/** The tuple of a checkpoint record; `writes`: how many pending-writes records it has, when known. */
export async function buildTuple(
  rt: ReadThread,
  r: ReadRecord<CheckpointState>,
  writes?: number,
): Promise<CheckpointTuple> {
  const { threads, serde, peer } = rt;
  const m = r.record.metadata;
  const s = r.state;
  const parentId =
    s.parent_id === null
      ? undefined
      : (m.parent_checkpoint_id ?? threadCheckpointId(m.pipeline_id, s.parent_id));
  const checkpoint = (await fromSerdeValue(
    serde,
    s.checkpoint,
    isDefaultSerde(rt),
  )) as CheckpointTuple["checkpoint"];
  // Checkpoints before format 4 kept pending sends as the parent's writes: LangGraph migrates them.
  const migrate = typeof checkpoint.v === "number" && checkpoint.v < 4 && parentId !== undefined;
  const [map, writeRecords, parentWrites] = await Promise.all([
    threads.channelMap(r),
    threads.writesOf(m.checkpoint_id, writes),
    migrate && parentId ? threads.writesOf(parentId) : Promise.resolve([]),
  ]);
  const slots = resolveWrites(peer, writeRecords);
  const sends = resolveWrites(peer, parentWrites).filter((slot) => slot.channel === peer.TASKS);
  const addresses: string[] = [];
  for (const [, address] of map.values()) if (address) addresses.push(address);
  for (const slot of [...slots, ...sends]) addresses.push(slot.address);
  const texts = await threads.outputs(m.pipeline_id, addresses, m.checkpoint_id);
  const plain = isDefaultSerde(rt);
  const value = (address: string) => outputValue(serde, texts.get(address) as string, m.checkpoint_id, plain);

  const channelValues: Record<string, unknown> = {};
  for (const [channel, [, address]] of map) {
    if (!address) continue;
    // Verified above; plain JSON values are parsed when first read, as cairn's own outputs are.
    const json = plain ? plainJson(texts.get(address) as string) : undefined;
    if (json === undefined) channelValues[channel] = await value(address);
    else lazyValue(channelValues, channel, json);
  }
  checkpoint.channel_values = channelValues;
  if (migrate) {
    checkpoint.channel_values[peer.TASKS] = await Promise.all(sends.map((slot) => value(slot.address)));
    checkpoint.channel_versions ??= {};
    const versions = Object.values(checkpoint.channel_versions);
    checkpoint.channel_versions[peer.TASKS] =
      versions.length > 0 ? peer.maxChannelVersion(...versions) : rt.nextVersion();
  }
  const pendingWrites: CheckpointPendingWrite[] = [];
  for (const slot of slots) pendingWrites.push([slot.taskId, slot.channel, await value(slot.address)]);
  const base = { thread_id: s.thread_id, checkpoint_ns: s.checkpoint_ns };
  const tuple: CheckpointTuple = {
    config: { configurable: { ...base, checkpoint_id: s.checkpoint_id } },
    checkpoint,
    metadata: (await fromSerdeValue(serde, s.metadata, isDefaultSerde(rt))) as CheckpointTuple["metadata"],
    pendingWrites,
  };
  if (s.parent_id !== null) tuple.parentConfig = { configurable: { ...base, checkpoint_id: s.parent_id } };
  return tuple;
}
