/**
 * What `cairn repair` reads before it changes anything: the backup of a stored checkpoint (its
 * raw record and every output it references, byte for byte) or of an entry that does not parse
 * (the store's raw rendering of it), and the search for such an entry by checkpoint id.
 */
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { FormatTooNewError } from "../core/errors.js";
import { salvageOutputRefs } from "../core/formats.js";
import { compactUtc } from "../core/ids.js";
import type { CheckpointRecord } from "../core/record.js";
import type { ValidationProblem } from "../core/types.js";
import type { CheckpointStore, CorruptEntry } from "../stores/types.js";
import { readOutline } from "../transforms/envelope.js";
import { writeFileDurably } from "../util/atomic-file.js";

/** Version of the backup file format. */
export const BACKUP_VERSION = 1;

/** One referenced output in a backup: its exact stored text, or a note that it is missing. */
export type BackedUpOutput = { hash: string; body: string } | { hash: string; missing: true };

/**
 * The output references a record holds, read leniently (a backup saves what it can of a damaged
 * record): by its format's rules when the body reads so, else salvaged from whatever parses; a
 * body that does not parse gives none.
 */
export function referencedOutputs(record: CheckpointRecord): Record<string, string> | undefined {
  try {
    return readOutline(record.metadata, record.body).output_refs;
  } catch (error) {
    if (error instanceof FormatTooNewError) throw error;
    return salvageOutputRefs(record.body);
  }
}

/** The backup content of a stored checkpoint: the raw record and every output it references. */
export async function checkpointBackup(
  store: CheckpointStore,
  record: CheckpointRecord,
  problems: readonly ValidationProblem[],
): Promise<Record<string, unknown>> {
  const refs = referencedOutputs(record);
  let outputs: Record<string, BackedUpOutput> | null = null;
  if (refs) {
    const hashes = [...new Set(Object.values(refs))];
    const stored =
      hashes.length > 0 ? await store.getOutputs(record.metadata.pipeline_id, hashes) : new Map();
    outputs = {};
    for (const [stage, hash] of Object.entries(refs)) {
      const body = stored.get(hash);
      outputs[stage] = body === undefined ? { hash, missing: true } : { hash, body };
    }
  }
  return {
    kind: "checkpoint",
    checkpoint_id: record.metadata.checkpoint_id,
    pipeline_id: record.metadata.pipeline_id,
    problems,
    // The body is kept as the exact text the checksum covers (JSON string escaping round-trips it).
    record: { metadata: record.metadata, body: record.body },
    outputs,
    ...(outputs === null ? { outputs_note: "the body does not parse: its outputs are not known" } : {}),
  };
}

/** The backup content of an entry that does not parse: the store's raw rendering of it. */
export async function corruptEntryBackup(
  store: CheckpointStore,
  entry: CorruptEntry,
): Promise<Record<string, unknown>> {
  return {
    kind: "unparseable_entry",
    checkpoint_id: entry.checkpointId ?? null,
    pipeline_id: entry.pipelineId,
    entry,
    raw: await store.readCorruptEntry(entry),
  };
}

/**
 * Writes a backup file durably in `dir` (created if needed) and returns its absolute path.
 * The name carries the id, the time and a random part, so a backup never replaces another.
 */
export async function writeBackup(
  dir: string,
  store: CheckpointStore,
  checkpointId: string,
  content: Record<string, unknown>,
  at: Date,
): Promise<string> {
  const folder = resolve(dir);
  const name = `${checkpointId}.${compactUtc(at)}.${randomBytes(3).toString("hex")}.json`;
  const document = {
    backup_version: BACKUP_VERSION,
    created_at: at.toISOString(),
    store: store.location,
    ...content,
  };
  const path = join(folder, name);
  await writeFileDurably(path, `${JSON.stringify(document, null, 2)}\n`);
  return path;
}

/** Run ids a checkpoint id may belong to, most likely first (ids are `{run}_{stage}_{time}_{suffix}`). */
function candidateRuns(checkpointId: string): string[] {
  const runs: string[] = [];
  for (let i = checkpointId.lastIndexOf("_"); i > 0; i = checkpointId.lastIndexOf("_", i - 1)) {
    runs.push(checkpointId.slice(0, i));
  }
  return runs;
}

/**
 * The listing entry of a checkpoint that does not parse: a corrupt entry with that id, or, when
 * the listing reads its metadata but the record still fails to parse, an entry made from it.
 */
export async function findCorruptEntry(
  store: CheckpointStore,
  checkpointId: string,
  reason: string,
): Promise<CorruptEntry | undefined> {
  const all = await store.listPipelineIds();
  const known = new Set(all);
  const runs = [...new Set([...candidateRuns(checkpointId).filter((r) => known.has(r)), ...all])];
  for (const pipelineId of runs) {
    for (const entry of await store.listCheckpoints(pipelineId)) {
      if (!entry.ok && entry.corrupt.checkpointId === checkpointId) return entry.corrupt;
      if (entry.ok && entry.metadata.checkpoint_id === checkpointId) {
        return { pipelineId, checkpointId, location: checkpointId, reason };
      }
    }
  }
  return undefined;
}
