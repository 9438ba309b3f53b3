/**
 * Checkpoint objects and id claims. A cp object is the JSON of a `CheckpointRecord`, exactly what
 * other stores keep. A claim (`ids/<id>`, `{"run","seq","w"}`) says which run holds an id; it is
 * written before the tip commit, so a claim whose run does not list the id is an orphan (a crashed
 * or lost write) that another writer may take over by compare-and-swap on its ETag.
 */
import { CheckpointCorruptError } from "../../core/errors.js";
import { assertSupportedFormat, metadataProblems } from "../../core/record.js";
import type { CheckpointRecord, ListedCheckpoint, StoredMetadata } from "../types.js";
import { claimKey, cpKey } from "./keys.js";
import { findEntry } from "./manifest.js";
import type { ObjectClient } from "./objects.js";
import { type CpEntry, liveTip, type Tips } from "./tip.js";

/** Why a cp object's text is not a record of this run and id; undefined when it is. */
export function recordProblem(
  text: string,
  runId: string,
  checkpointId: string,
): { problem: string } | { record: CheckpointRecord } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: "the object is not JSON" };
  }
  const record = value as Partial<CheckpointRecord> | null;
  if (record === null || typeof record !== "object" || typeof record.body !== "string") {
    return { problem: "the object is not a checkpoint record (no body text)" };
  }
  const problems = metadataProblems(record.metadata);
  if (problems.length > 0) return { problem: problems.join("; ") };
  const m = record.metadata as StoredMetadata;
  if (m.checkpoint_id !== checkpointId || m.pipeline_id !== runId) {
    return { problem: `the record is ${m.pipeline_id}/${m.checkpoint_id}, not ${runId}/${checkpointId}` };
  }
  return { record: { metadata: { ...m }, body: record.body } };
}

/** One manifest entry read as a listing entry: its metadata, or a corrupt entry. */
export async function readListed(
  client: ObjectClient,
  runId: string,
  entry: CpEntry,
): Promise<ListedCheckpoint> {
  const key = cpKey(runId, entry[1], entry[2]);
  const got = await client.get(key);
  const parsed = got
    ? recordProblem(got.body.toString("utf8"), runId, entry[1])
    : { problem: "the object is missing" };
  if ("record" in parsed) return { ok: true, metadata: parsed.record.metadata };
  return {
    ok: false,
    corrupt: { pipelineId: runId, checkpointId: entry[1], location: key, reason: parsed.problem },
  };
}

/** One manifest entry's record; `CheckpointCorruptError` when its object does not parse. */
export async function readRecord(
  client: ObjectClient,
  runId: string,
  entry: CpEntry,
): Promise<CheckpointRecord> {
  const key = cpKey(runId, entry[1], entry[2]);
  const got = await client.get(key);
  const parsed = got
    ? recordProblem(got.body.toString("utf8"), runId, entry[1])
    : { problem: "the object is missing" };
  if ("problem" in parsed) throw new CheckpointCorruptError(entry[1], `${key}: ${parsed.problem}`);
  assertSupportedFormat(parsed.record.metadata, key);
  return parsed.record;
}

/** A claim's body. */
export interface Claim {
  run: string;
  seq: number;
  /** The writer's nonce: lets a writer tell its own claim from a takeover. */
  w: string;
}

/** Reads a claim; undefined when absent or unreadable (an unreadable claim is an orphan). */
export async function readClaim(
  client: ObjectClient,
  checkpointId: string,
): Promise<{ claim: Claim | undefined; etag: string } | undefined> {
  const got = await client.get(claimKey(checkpointId));
  if (!got) return undefined;
  try {
    const claim = JSON.parse(got.body.toString("utf8")) as Claim;
    if (typeof claim.run === "string" && typeof claim.seq === "number") return { claim, etag: got.etag };
  } catch {
    // An unreadable claim is no claim: it may be taken over.
  }
  return { claim: undefined, etag: got.etag };
}

/** Where a claimed id is committed: its run and manifest entry; undefined when nowhere (orphan). */
export async function locate(
  client: ObjectClient,
  tips: Tips,
  checkpointId: string,
  claim: Claim,
): Promise<{ runId: string; entry: CpEntry } | undefined> {
  const tip = liveTip((await tips.read(claim.run)).tip);
  if (!tip) return undefined;
  const entry = await findEntry(client, tip, checkpointId, claim.seq);
  return entry && { runId: claim.run, entry };
}

/**
 * Claims an id for `runId` create-only, taking over an orphan claim. Returns "claimed", or the
 * run that holds the id (the write is a conflict).
 */
export async function claimId(
  client: ObjectClient,
  tips: Tips,
  checkpointId: string,
  mine: Claim,
): Promise<"claimed" | { heldBy: string }> {
  const key = claimKey(checkpointId);
  const body = JSON.stringify(mine);
  for (let attempt = 0; attempt < 20; attempt++) {
    if ((await client.put(key, body, { ifNoneMatch: "*" })).ok) return "claimed";
    const found = await readClaim(client, checkpointId);
    if (!found) continue;
    if (found.claim) {
      const held = await locate(client, tips, checkpointId, found.claim);
      if (held) return { heldBy: held.runId };
    }
    // An orphan: take it over, unless someone else changed it first.
    if ((await client.put(key, body, { ifMatch: found.etag })).ok) return "claimed";
  }
  return { heldBy: "(contended)" };
}

/** Deletes a claim if it is still ours (our writer nonce); a takeover by another writer stays. */
export async function dropOwnClaim(client: ObjectClient, checkpointId: string, nonce: string): Promise<void> {
  const found = await readClaim(client, checkpointId);
  if (found?.claim?.w === nonce) await client.delete(claimKey(checkpointId));
}
