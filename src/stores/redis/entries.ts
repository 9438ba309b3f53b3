/**
 * Reading the scripts' checkpoint replies: an entry's metadata is parsed and checked against its
 * key and its run before it becomes a record or a listing row; what does not parse is corrupt.
 */
import { CheckpointCorruptError } from "../../core/errors.js";
import { assertSupportedFormat, metadataProblems } from "../../core/record.js";
import type { CheckpointRecord, ListedCheckpoint, StoredMetadata } from "../types.js";
import type { RedisKeys } from "./keys.js";

/** One checkpoint as the scripts answer it: `[id, score, kind, meta|type, run, body]`. */
export type Entry = [string, string, "hash" | "wrongtype", string | null, string | null, string | null];

const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Parses an entry's metadata; returns it, or every problem found. */
export function inspectEntry(
  entry: Entry,
  pipelineId?: string,
): { metadata: StoredMetadata } | { problems: string[] } {
  const [id, , kind, meta, run] = entry;
  if (kind === "wrongtype") return { problems: [`holds a ${meta}, not a hash`] };
  if (meta === null) return { problems: ["has no meta field"] };
  let value: unknown;
  try {
    value = JSON.parse(meta);
  } catch {
    return { problems: ["meta is not valid JSON"] };
  }
  const problems = metadataProblems(value);
  if (problems.length > 0) return { problems };
  const metadata = value as StoredMetadata;
  if (metadata.checkpoint_id !== id) problems.push(`meta is of checkpoint ${metadata.checkpoint_id}`);
  if (pipelineId !== undefined && metadata.pipeline_id !== pipelineId) {
    problems.push(`meta is of run ${metadata.pipeline_id}`);
  }
  if (run !== metadata.pipeline_id)
    problems.push(`run field ${JSON.stringify(run)} differs from pipeline_id`);
  return problems.length > 0 ? { problems } : { metadata };
}

/** The record of an entry; `CheckpointCorruptError`, naming its key, when it does not parse. */
export function toRecord(keys: RedisKeys, entry: Entry, pipelineId?: string): CheckpointRecord {
  const key = keys.checkpoint(entry[0]);
  const checked = inspectEntry(entry, pipelineId);
  if ("problems" in checked) {
    throw new CheckpointCorruptError(
      entry[0],
      checked.problems.map((p) => `${key}: ${p}`),
    );
  }
  const body = entry[5];
  if (typeof body !== "string") throw new CheckpointCorruptError(entry[0], `${key}: has no body field`);
  return { metadata: assertSupportedFormat(checked.metadata, key), body };
}

/** A run's entries as its listing, oldest first; unreadable ones are listed as corrupt. */
export function toListing(
  keys: RedisKeys,
  entries: readonly Entry[],
  pipelineId: string,
): ListedCheckpoint[] {
  const listed = entries.map((entry) => {
    const checked = inspectEntry(entry, pipelineId);
    const item: ListedCheckpoint =
      "metadata" in checked
        ? { ok: true, metadata: checked.metadata }
        : {
            ok: false,
            corrupt: {
              pipelineId,
              checkpointId: entry[0],
              location: keys.checkpoint(entry[0]),
              reason: checked.problems.join("; "),
            },
          };
    return { id: entry[0], score: Number(entry[1]), item };
  });
  // Same order as `compareStored`; a corrupt entry sorts by its index score.
  const sequence = (e: (typeof listed)[number]) => (e.item.ok ? e.item.metadata.sequence : e.score);
  const time = (e: (typeof listed)[number]) => (e.item.ok ? e.item.metadata.timestamp : "");
  listed.sort((a, b) => sequence(a) - sequence(b) || byteOrder(time(a), time(b)) || byteOrder(a.id, b.id));
  return listed.map((e) => e.item);
}
