/**
 * The Redis store's reads of checkpoints, run heads and outputs: the argument lists of their
 * scripts (`scripts.ts`), which refresh the run's TTL, and the plain commands that must not.
 */
import { compareStored } from "../../core/record.js";
import type { CheckpointRecord, ListedCheckpoint, RunHead } from "../types.js";
import type { RedisClient } from "./config.js";
import { type Entry, toListing, toRecord } from "./entries.js";
import type { RedisKeys } from "./keys.js";
import type { ScriptRunner } from "./runs-index.js";

/** What the reads need of their store. */
export interface RedisReader {
  client: RedisClient;
  keys: RedisKeys;
  ttlSeconds: number;
  runScript: ScriptRunner;
  /** Runs `fn`, reporting a failure as the store's typed error for `operation`. */
  run<T>(operation: string, fn: () => Promise<T>): Promise<T>;
}

/** One checkpoint by id; reading it refreshes its run's TTL. */
export async function getCheckpoint(
  r: RedisReader,
  checkpointId: string,
): Promise<CheckpointRecord | undefined> {
  const key = r.keys.checkpoint(checkpointId);
  const entry = (await r.runScript(
    "getCheckpoint",
    "get",
    key,
    r.keys.prefix,
    r.ttlSeconds,
    checkpointId,
  )) as Entry | null;
  return entry ? toRecord(r.keys, entry) : undefined;
}

/** The run's newest checkpoint: only the entries with the top score are read. */
export async function getLatestCheckpoint(
  r: RedisReader,
  pipelineId: string,
): Promise<CheckpointRecord | undefined> {
  const entries = (await r.runScript(
    "getLatestCheckpoint",
    "latest",
    r.keys.index(pipelineId),
    r.keys.prefix,
    r.ttlSeconds,
    pipelineId,
  )) as Entry[];
  const records = entries.map((e) => toRecord(r.keys, e, pipelineId));
  return records.sort((a, b) => compareStored(a.metadata, b.metadata)).at(-1);
}

/** The run's checkpoints, oldest first; unreadable ones are listed as corrupt. */
export async function listCheckpoints(r: RedisReader, pipelineId: string): Promise<ListedCheckpoint[]> {
  const entries = (await r.runScript(
    "listCheckpoints",
    "list",
    r.keys.index(pipelineId),
    r.keys.prefix,
    r.ttlSeconds,
    pipelineId,
  )) as Entry[];
  return toListing(r.keys, entries, pipelineId);
}

/** Every run id that still holds checkpoints or outputs, sorted; ids of expired runs are pruned. */
export async function listPipelineIds(r: RedisReader): Promise<string[]> {
  const ids = (await r.runScript("listPipelineIds", "pipelineIds", r.keys.runs, r.keys.prefix)) as string[];
  return ids.sort();
}

/** The run's head hash: its newest write and retention's tombstone. */
export async function getRunHead(r: RedisReader, pipelineId: string): Promise<RunHead | undefined> {
  const key = r.keys.head(pipelineId);
  const fields = ["seq", "tip", "sum", "pruned", "pruned_at"];
  const [seq, tip, sum, pruned, at] = (await r.run("getRunHead", () =>
    r.client.call("HMGET", key, ...fields),
  )) as (string | null)[];
  if (!tip || seq === null || seq === undefined) return undefined;
  const head: RunHead = { sequence: Number(seq), checkpointId: tip, checksum: sum ?? "" };
  if (pruned !== null && pruned !== undefined) {
    head.pruned = { throughSequence: Number(pruned), at: at ?? "" };
  }
  return head;
}

/** The run's outputs with the given hashes; reading them refreshes the run's TTL. */
export async function getOutputs(
  r: RedisReader,
  pipelineId: string,
  hashes: readonly string[],
): Promise<Map<string, string>> {
  const unique = [...new Set(hashes)];
  const k = r.keys;
  const values = (await r.runScript(
    "getOutputs",
    "getOutputs",
    ...[k.outputs(pipelineId), k.prefix, r.ttlSeconds, pipelineId, ...unique],
  )) as (string | null)[];
  const found = new Map<string, string>();
  unique.forEach((hash, i) => {
    const body = values[i];
    if (typeof body === "string") found.set(hash, body);
  });
  return found;
}

/** Every output hash stored for the run, sorted. */
export async function listOutputHashes(r: RedisReader, pipelineId: string): Promise<string[]> {
  const k = r.keys;
  const args = [k.outputs(pipelineId), k.prefix, r.ttlSeconds, pipelineId];
  return ((await r.runScript("listOutputHashes", "outputHashes", ...args)) as string[]).sort();
}
