/**
 * The Redis store's writes that feed the change feed: the argument lists of the `put`, `update`,
 * `deleteCheckpoints` and `deleteRun` scripts (`scripts.ts`), each of which appends its changes
 * to the feed stream in the same script, and the reading of their replies.
 */
import type { CheckpointRecord, Lease, OutputRecord, PutOptions, StatusPatch } from "../types.js";
import { type RedisKeys, runMember } from "./keys.js";
import { checkPutReply, checkUpdateReply, type PutReply } from "./replies.js";
import type { ScriptRunner } from "./runs-index.js";

/** What the writes need of their store. */
export interface RedisWriter {
  runScript: ScriptRunner;
  keys: RedisKeys;
  ttlSeconds: number;
  feedRetention: number;
}

/** Writes a checkpoint, its outputs, the run index and head, and its `checkpoint` change. */
export async function putCheckpoint(
  w: RedisWriter,
  record: CheckpointRecord,
  outputs: readonly OutputRecord[],
  fence?: Lease,
  options?: PutOptions,
): Promise<void> {
  const expectedTip = options?.expectedTip;
  const m = record.metadata;
  const pipelineId = m.pipeline_id;
  const id = m.checkpoint_id;
  const k = w.keys;
  const pairs = outputs.flatMap((o) => [o.hash, o.body]);
  const finishes = m.stage_name === "pipeline_complete" ? "1" : "0";
  const reply = (await w.runScript(
    "putCheckpoint",
    "put",
    ...[k.checkpoint(id), k.index(pipelineId), k.outputs(pipelineId), k.runs, k.lease(pipelineId)],
    ...[k.head(pipelineId), k.feed],
    ...[k.prefix, w.ttlSeconds, pipelineId, id, m.sequence, JSON.stringify(m), record.body],
    ...[fence?.owner ?? "", fence?.token ?? 0],
    ...[expectedTip === undefined ? "0" : "1", expectedTip ?? ""],
    ...[m.pipeline_name, m.timestamp, runMember(m.timestamp, pipelineId), finishes, m.checksum],
    ...[w.feedRetention, ...pairs],
  )) as PutReply;
  checkPutReply(reply, pipelineId, id, k.lease(pipelineId), fence, expectedTip);
}

/** Patches the mutable fields and records a `status` change; `CheckpointNotFoundError` when absent. */
export async function updateCheckpoint(
  w: RedisWriter,
  checkpointId: string,
  patch: StatusPatch,
): Promise<void> {
  const fields: Partial<StatusPatch> = {};
  if (patch.status !== undefined) fields.status = patch.status;
  if (patch.error_message !== undefined) fields.error_message = patch.error_message;
  if (patch.resume_count !== undefined) fields.resume_count = patch.resume_count;
  const key = w.keys.checkpoint(checkpointId);
  const reply = (await w.runScript(
    "updateCheckpoint",
    "update",
    ...[key, w.keys.feed, w.keys.prefix, w.ttlSeconds, JSON.stringify(fields)],
    ...[w.feedRetention, checkpointId],
  )) as [string, string?];
  checkUpdateReply(reply, checkpointId, key);
}

/** Deletes checkpoints of a run, each a `deleted` change unless `feed` is false (corrupt-entry removal). */
export async function deleteIds(
  w: RedisWriter,
  pipelineId: string,
  checkpointIds: readonly string[],
  retention: boolean,
  feed: boolean,
): Promise<number> {
  if (checkpointIds.length === 0) return 0;
  const k = w.keys;
  const args: (string | number)[] = [k.index(pipelineId), k.head(pipelineId), k.feed, k.prefix, pipelineId];
  args.push(retention ? "1" : "0");
  // Retention 0 tells the script to leave the feed alone.
  args.push(new Date().toISOString(), feed ? w.feedRetention : 0, w.ttlSeconds, ...new Set(checkpointIds));
  return (await w.runScript("deleteCheckpoints", "deleteCheckpoints", ...args)) as number;
}

/** Deletes a run's keys and index entries, with one `deleted` change when it held anything. */
export async function deleteRun(w: RedisWriter, pipelineId: string): Promise<void> {
  const k = w.keys;
  const keys = [k.index(pipelineId), k.outputs(pipelineId), k.runs, k.head(pipelineId)];
  const args = [...keys, k.lease(pipelineId), k.runKey(pipelineId), k.feed, k.prefix, pipelineId];
  await w.runScript("deleteRun", "deleteRun", ...args, w.feedRetention, w.ttlSeconds);
}
