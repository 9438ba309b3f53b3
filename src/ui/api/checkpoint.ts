/**
 * The checkpoint page: metadata, stage lists, provenance, the one check's verdict, the state
 * (inline up to 64 KB of JSON, else a URL) and each output by size and URL, never its value: a
 * 1 MB output is fetched only when opened. A corrupt checkpoint answers with its problems; an
 * encrypted one without its key with `encrypted: true` and no values.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointCorruptError, CheckpointNotFoundError, KeyMissingError } from "../../core/errors.js";
import { assertValidName } from "../../core/ids.js";
import { type CheckpointRecord, type StoredMetadata, toMetadata } from "../../core/record.js";
import type { ValidationProblem } from "../../core/types.js";
import {
  type CheckOutcome,
  checkRecord,
  isQuarantined,
  listedParents,
  storeParents,
} from "../../manager/check.js";
import type { VerifiedRecord } from "../../manager/verify.js";
import { type Outline, readOutline } from "../../transforms/envelope.js";
import { type ApiContext, checkpointUrl, INLINE_LIMIT, iso } from "./context.js";

/** A value shown inline, or fetched from `url` when opened. */
export type Lazy = { inline: unknown } | { lazy: true; size: number; url: string };

/** Checkpoint metadata as the pages show it (dates as ISO strings). */
export type MetadataJson = Omit<ReturnType<typeof toMetadata>, "timestamp"> & { timestamp: string };

/** Everything the checkpoint page shows. */
export interface CheckpointDetail {
  checkpointId: string;
  /** Null when not even the metadata parses. */
  metadata: MetadataJson | null;
  completedStages: string[] | null;
  pendingStages: string[] | null;
  provenance: Record<string, string> | null;
  validation: {
    status: "valid" | "invalid" | "quarantined" | "encrypted";
    problems: ValidationProblem[];
  };
  encrypted: boolean;
  /** Null when the checkpoint does not verify or is encrypted without its key. */
  state: Lazy | null;
  /** `size` and `url` null when the output cannot be served (not verified, no key). */
  outputs: { name: string; hash: string; size: number | null; url: string | null }[];
  /** Null when the checkpoint cannot be exported (it does not verify). */
  exportUrl: string | null;
}

/** The checkpoint page's data; `CAIRN_NOT_FOUND` for an id the store does not hold. */
export async function checkpointDetail(ctx: ApiContext, checkpointId: string): Promise<CheckpointDetail> {
  assertValidName("checkpointId", checkpointId);
  const store = await ctx.manager.getStore();
  let record: CheckpointRecord | undefined;
  try {
    record = await store.getCheckpoint(checkpointId);
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    // Stored but unparseable: no metadata, no content; the problem is what the page shows.
    return {
      ...empty(checkpointId),
      validation: { status: "invalid", problems: [{ kind: "unreadable", message: error.message }] },
    };
  }
  if (!record) throw new CheckpointNotFoundError(checkpointId);
  const listing = await store.listCheckpoints(record.metadata.pipeline_id);
  let outcome: CheckOutcome;
  try {
    outcome = await checkRecord(store, record, listedParents(listing, storeParents(store)));
  } catch (error) {
    if (!(error instanceof KeyMissingError)) throw error;
    const outline = outlineOf(record);
    return {
      ...empty(checkpointId),
      ...withOutline(record.metadata, outline),
      validation: {
        status: "encrypted",
        problems: [{ kind: "unreadable", message: error.message }],
      },
      encrypted: true,
    };
  }
  const { problems, verified } = outcome;
  const status = problems.length === 0 ? "valid" : isQuarantined(record.metadata) ? "quarantined" : "invalid";
  if (!verified) {
    return {
      ...empty(checkpointId),
      ...withOutline(record.metadata, outlineOf(record)),
      validation: { status, problems },
    };
  }
  const body = verified.body;
  const stateText = JSON.stringify(body.state_data);
  const stateSize = Buffer.byteLength(stateText, "utf8");
  return {
    checkpointId,
    metadata: metadataJson(record.metadata),
    completedStages: body.completed_stages,
    pendingStages: body.pending_stages,
    provenance: body.provenance_hashes,
    validation: { status, problems },
    encrypted: false,
    state:
      stateSize <= INLINE_LIMIT
        ? { inline: body.state_data }
        : { lazy: true, size: stateSize, url: checkpointUrl(checkpointId, "state") },
    outputs: Object.entries(body.output_refs).map(([name, hash]) => {
      const text = verified.outputs.get(hash);
      return {
        name,
        hash,
        size: text === undefined ? null : Buffer.byteLength(text, "utf8"),
        url: text === undefined ? null : checkpointUrl(checkpointId, "outputs", name),
      };
    }),
    exportUrl: problems.length === 0 ? checkpointUrl(checkpointId, "export") : null,
  };
}

/** The checkpoint's state as verified JSON (the stored tree: codec tags for what JSON cannot hold). */
export async function checkpointState(ctx: ApiContext, checkpointId: string): Promise<string> {
  return JSON.stringify((await verifiedOf(ctx, checkpointId)).body.state_data);
}

/** One stage's output as verified JSON text; `CAIRN_NOT_FOUND` when the checkpoint holds none by that name. */
export async function checkpointOutput(ctx: ApiContext, checkpointId: string, name: string): Promise<string> {
  assertValidName("stageName", name);
  const verified = await verifiedOf(ctx, checkpointId);
  const refs = verified.body.output_refs;
  const hash = Object.hasOwn(refs, name) ? refs[name] : undefined;
  const text = hash === undefined ? undefined : verified.outputs.get(hash);
  if (text === undefined) {
    throw new CheckpointNotFoundError(name, `Checkpoint ${checkpointId} holds no output of stage ${name}`);
  }
  return text;
}

/** The file `cairn export --checkpoint-id` writes, by the same code, read back from a temporary folder. */
export async function checkpointExport(
  ctx: ApiContext,
  checkpointId: string,
): Promise<{ filename: string; text: string }> {
  assertValidName("checkpointId", checkpointId);
  const dir = await mkdtemp(join(tmpdir(), "cairn-ui-export-"));
  try {
    const path = join(dir, "export.json");
    await ctx.manager.exportCheckpoint(checkpointId, path);
    return { filename: `${checkpointId}.json`, text: await readFile(path, "utf8") };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The checkpoint's verified record; `CAIRN_CORRUPT` with its problems when it does not verify. */
async function verifiedOf(ctx: ApiContext, checkpointId: string): Promise<VerifiedRecord> {
  assertValidName("checkpointId", checkpointId);
  const store = await ctx.manager.getStore();
  const record = await store.getCheckpoint(checkpointId);
  if (!record) throw new CheckpointNotFoundError(checkpointId);
  // The chain link is the run's concern; the record's own content and outputs are what is served.
  const { problems, verified } = await checkRecord(store, record, async () => undefined);
  if (!verified) {
    throw new CheckpointCorruptError(
      checkpointId,
      problems.map((p) => p.message),
    );
  }
  return verified;
}

function empty(checkpointId: string): CheckpointDetail {
  return {
    checkpointId,
    metadata: null,
    completedStages: null,
    pendingStages: null,
    provenance: null,
    validation: { status: "invalid", problems: [] },
    encrypted: false,
    state: null,
    outputs: [],
    exportUrl: null,
  };
}

/** The clear outline of a body that does not verify or is sealed; undefined when there is none. */
function outlineOf(record: CheckpointRecord): Outline | undefined {
  try {
    return readOutline(record.metadata, record.body);
  } catch (error) {
    if (error instanceof CheckpointCorruptError || error instanceof KeyMissingError) return undefined;
    throw error;
  }
}

/** What the metadata and an outline tell without verified content: stages and output addresses. */
function withOutline(
  metadata: StoredMetadata,
  outline: Outline | undefined,
): Pick<CheckpointDetail, "metadata" | "completedStages" | "pendingStages" | "outputs"> {
  return {
    metadata: metadataJson(metadata),
    completedStages: outline?.completed_stages ?? null,
    pendingStages: outline?.pending_stages ?? null,
    outputs: Object.entries(outline?.output_refs ?? {}).map(([name, hash]) => ({
      name,
      hash,
      size: null,
      url: null,
    })),
  };
}

function metadataJson(m: StoredMetadata): MetadataJson {
  const meta = toMetadata(m);
  return { ...meta, timestamp: iso(meta.timestamp) as string };
}
