/**
 * Finding a checkpoint's file by id in the file store without listing a folder per lookup: first
 * where this instance's last listings saw it, then where the id's marker says (`id-index.ts`),
 * and only then by listing run folders as before. A run walk lists once and then reads each
 * checkpoint by id, so it stays linear in the run's size; only an id that is not there at all
 * (or a file added by hand) still costs listings.
 */
import { hasCode } from "../../util/fs-util.js";
import type { CheckpointRecord, ListedCheckpoint } from "../types.js";
import { checkpointFileName } from "./checkpoint-file.js";
import { readMarker } from "./id-index.js";
import { type Located, locate, readLocated } from "./run-paths.js";

/** Runs whose last listing is remembered: a walk reads one run, a compare two. */
const REMEMBERED_RUNS = 4;

/** Where this instance's last listings of a few runs saw each checkpoint id. */
export class Locations {
  private readonly runs = new Map<string, { dir: string; names: Map<string, string> }>();

  /** Remembers a run's listing, replacing the one remembered before. */
  remember(pipelineId: string, dir: string, listing: readonly ListedCheckpoint[]): void {
    const names = new Map<string, string>();
    for (const entry of listing) {
      if (!entry.ok) continue;
      const { checkpoint_id: id, sequence } = entry.metadata;
      const name = checkpointFileName(sequence, id);
      // Several files of one id (made by hand): the one listed last, as a lookup by listing finds.
      const seen = names.get(id);
      if (seen === undefined || name > seen) names.set(id, name);
    }
    this.runs.delete(pipelineId);
    this.runs.set(pipelineId, { dir, names });
    for (const oldest of this.runs.keys()) {
      if (this.runs.size <= REMEMBERED_RUNS) break;
      this.runs.delete(oldest);
    }
  }

  /** Forgets a run (deleted or replaced as a whole). */
  forget(pipelineId: string): void {
    this.runs.delete(pipelineId);
  }

  /** Where a remembered listing saw the id. */
  get(checkpointId: string): Located | undefined {
    for (const [pipelineId, { dir, names }] of this.runs) {
      const name = names.get(checkpointId);
      if (name !== undefined) return { pipelineId, dir, name };
    }
    return undefined;
  }
}

/** A checkpoint found by id: its file and its record. */
export interface Found {
  found: Located;
  record: CheckpointRecord;
}

/**
 * Reads the checkpoint of an id: from a remembered listing, from its marker, else by listing
 * run folders as before the index (so files added by hand are still found).
 * A file gone since it was seen sends the lookup on to the next way.
 */
export async function findById(
  basePath: string,
  locations: Locations,
  checkpointId: string,
): Promise<Found | undefined> {
  for (const guess of [locations.get(checkpointId), readMarker(basePath, checkpointId)]) {
    if (!guess) continue;
    const read = await readIfThere(guess);
    if (read) return read;
  }
  // Not remembered, not marked: an absent id, a stale marker, or a file added by hand.
  const found = await locate(basePath, checkpointId);
  return found && readIfThere(found);
}

async function readIfThere(found: Located): Promise<Found | undefined> {
  try {
    return { found, record: await readLocated(found) };
  } catch (error) {
    // Deleted (or renamed by hand) since it was seen: not there.
    if (hasCode(error, "ENOENT")) return undefined;
    throw error;
  }
}
