/**
 * The Redis store's `cairn repair` paths: reading and removing corrupt entries, and rebuilding a
 * run's indexes. Admin-only code kept apart from the run/resume path so the store file stays short.
 */
import { CheckpointConflictError, CheckpointNotFoundError } from "../../core/errors.js";
import type { CorruptEntry } from "../types.js";
import type { RedisClient } from "./config.js";
import { type Entry, inspectEntry } from "./entries.js";
import type { RedisKeys } from "./keys.js";
import { renderKey, scanCheckpointIds } from "./maintenance.js";
import { buildEntry, type ScriptRunner } from "./runs-index.js";

/** What the repair paths need from their store. */
export interface RedisRepairer {
  client: RedisClient;
  keys: RedisKeys;
  ttlSeconds: number;
  runScript: ScriptRunner;
  /** Runs `fn`, reporting a failure as the store's typed error for `operation`. */
  run<T>(operation: string, fn: () => Promise<T>): Promise<T>;
  /** The store's own `deleteCheckpoints`. */
  deleteCheckpoints(pipelineId: string, checkpointIds: readonly string[]): Promise<number>;
}

const corruptEntryGone = (entry: CorruptEntry) =>
  new CheckpointNotFoundError(
    entry.checkpointId ?? entry.location,
    `The corrupt entry ${entry.location} is no longer in the store`,
  );

function corruptKey(keys: RedisKeys, entry: CorruptEntry): string {
  if (entry.checkpointId === undefined) throw corruptEntryGone(entry);
  return keys.checkpoint(entry.checkpointId);
}

/** What a corrupt entry's key holds (the hash's fields, or the value of another type) as JSON. */
export async function readCorruptEntry(db: RedisRepairer, entry: CorruptEntry): Promise<string> {
  const key = corruptKey(db.keys, entry);
  const text = await db.run("readCorruptEntry", () => renderKey(db.client, key));
  if (text === undefined) throw corruptEntryGone(entry);
  return text;
}

/** DELs a corrupt entry's key and ZREMs it from the run index, once sure it still does not parse. */
export async function removeCorruptEntry(db: RedisRepairer, entry: CorruptEntry): Promise<void> {
  const key = corruptKey(db.keys, entry);
  const id = entry.checkpointId as string;
  const args = [key, db.keys.prefix, db.ttlSeconds, id];
  const found = (await db.runScript("removeCorruptEntry", "get", ...args)) as Entry | null;
  if (found && "metadata" in inspectEntry(found, entry.pipelineId) && typeof found[5] === "string") {
    throw new CheckpointConflictError(
      id,
      `${key} parses as a checkpoint now; it is not removed as a corrupt entry`,
    );
  }
  // The delete script removes the key only when it is this run's (indexed here, or its `run` field).
  if ((await db.deleteCheckpoints(entry.pipelineId, [id])) === 0) throw corruptEntryGone(entry);
}

/**
 * Puts back in the run index every checkpoint hash of this run it lacks (found by SCAN), then
 * recomputes the run's runs-by-name entry from its checkpoints.
 */
export async function rebuildIndexes(db: RedisRepairer, pipelineId: string): Promise<string[]> {
  const keys = db.keys;
  const index = keys.index(pipelineId);
  const ids = await db.run("rebuildIndexes", () => scanCheckpointIds(db.client, keys));
  const done: string[] = [];
  for (const id of ids) {
    const k = [keys.checkpoint(id), index, keys.runs];
    const added = await db.runScript(
      "rebuildIndexes",
      "reindex",
      ...k,
      keys.prefix,
      db.ttlSeconds,
      pipelineId,
      id,
    );
    if (added === 1) done.push(`re-added checkpoint ${id} to the run index ${index}`);
  }
  const entry = await buildEntry(db.runScript, keys, pipelineId, true);
  if (entry) done.push(entry);
  return done;
}
