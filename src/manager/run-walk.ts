/**
 * The one run walk: list a run once (an empty run is `CAIRN_NOT_FOUND`), check every checkpoint
 * with the one check (`check.ts`), count entries the listing cannot parse as invalid, and report
 * a checkpoint deleted between the listing and its read as gone. Validation, export, analysis,
 * reports and graphs all walk a run through here, so they agree on what is valid.
 */
import { CheckpointCorruptError, CheckpointNotFoundError, KeyMissingError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import type { CheckpointRecord, StoredMetadata } from "../core/record.js";
import type { ValidationProblem } from "../core/types.js";
import type { CheckpointStore, CorruptEntry, ListedCheckpoint } from "../stores/types.js";
import { type Outline, readOutline } from "../transforms/envelope.js";
import {
  checkStored,
  isQuarantined,
  listedParents,
  OutputMemo,
  type StoredCheck,
  storeParents,
} from "./check.js";
import { type HistoryFinding, historyFindings, readHead } from "./history.js";
import type { VerifiedRecord } from "./verify.js";

/** What the walk found for one entry of a run's listing. */
export interface CheckpointVerdict {
  /** Null for an unparseable entry whose id cannot be told from its location. */
  checkpointId: string | null;
  /**
   * `gone`: deleted since the listing was read; no longer part of the run. `sealed`: encrypted
   * under a key this reader lacks, so not verified (neither valid nor invalid; see `keyMissing`).
   */
  status: "valid" | "invalid" | "gone" | "sealed";
  /** Empty unless `invalid`. */
  problems: ValidationProblem[];
  /** An invalid checkpoint `cairn repair` quarantined: a handled problem, resume skips it. */
  quarantined: boolean;
  /** The listed metadata; undefined for an entry the listing cannot parse. */
  metadata: StoredMetadata | undefined;
  /** The entry the listing cannot parse (location and reason); undefined otherwise. */
  corrupt: CorruptEntry | undefined;
  /**
   * Stage lists and output references (and, when known, the version fields), when the body
   * parses, even if the checkpoint is invalid; an encrypted body without its key gives its outline.
   */
  body: Outline | undefined;
  /** The key a `sealed` checkpoint needs; absent otherwise. */
  keyMissing?: SealedKey;
}

/** The key a sealed checkpoint is encrypted under, as `KeyMissingError` names it (never the key). */
export interface SealedKey {
  keyId: string;
  kind: KeyMissingError["kind"];
}

/** One step of {@link walkRun}: the verdict, and the verified record of a valid checkpoint. */
export interface WalkStep {
  verdict: CheckpointVerdict;
  /** Present exactly when the verdict is `valid`. */
  verified: VerifiedRecord | undefined;
}

/** Counts over a run's listing; `listed` = `valid` + `invalid` + `gone` + `sealed`. */
export interface RunSummary {
  listed: number;
  valid: number;
  invalid: number;
  gone: number;
  /** Not verified: encrypted under a key this reader lacks (only with `sealed: "report"`). */
  sealed: number;
  /** The invalid checkpoints that are quarantined (counted in `invalid` too). */
  quarantined: number;
}

/** Outcome of {@link validateRun}. */
export interface RunValidation {
  pipelineId: string;
  /**
   * True when every entry verified (none invalid, none sealed: nothing unverified is called
   * valid) and no history is lost (see {@link RunValidation.history}).
   */
  valid: boolean;
  /** One verdict per listing entry, oldest first. */
  checkpoints: CheckpointVerdict[];
  summary: RunSummary;
  /** The listing the walk read, as the store returned it. */
  listing: ListedCheckpoint[];
  /** The listing compared with the run's head record: lost history, and what retention removed. */
  history: HistoryFinding[];
}

/** Options of the run walk. */
export interface WalkOptions {
  /** Called before each entry and once at the end: `done` of `total` entries. */
  onProgress?: (done: number, total: number) => void;
  /** The run's listing, already read by the caller; the walk then lists nothing. */
  listing?: ListedCheckpoint[];
  /** Where parents are looked up first, when it is not `listing` (a walk of part of a run). */
  parents?: readonly ListedCheckpoint[];
  /**
   * A checkpoint encrypted under a key this reader lacks: `throw` its `KeyMissingError` (the
   * default: validation cannot vouch for it), or `report` it as a `sealed` verdict with its
   * clear outline, so analysis works without keys.
   */
  sealed?: "throw" | "report";
}

/** The run's listing, corrupt entries included; a run with nothing stored is `CAIRN_NOT_FOUND`. */
export async function listRun(store: CheckpointStore, pipelineId: string): Promise<ListedCheckpoint[]> {
  assertValidName("pipelineId", pipelineId);
  const listing = await store.listCheckpoints(pipelineId);
  if (listing.length === 0) {
    throw new CheckpointNotFoundError(
      pipelineId,
      `No pipeline run with id ${JSON.stringify(pipelineId)} in the store`,
    );
  }
  return listing;
}

/**
 * Walks a run entry by entry, as the module comment says: one record read per checkpoint, and
 * each output read, hashed and decoded once however many checkpoints hold it.
 */
export async function* walkRun(
  store: CheckpointStore,
  pipelineId: string,
  options: WalkOptions = {},
): AsyncGenerator<WalkStep> {
  const listing = options.listing ?? (await listRun(store, pipelineId));
  const parents = listedParents(options.parents ?? listing, storeParents(store));
  const memo = new OutputMemo();
  for (const [i, entry] of listing.entries()) {
    options.onProgress?.(i, listing.length);
    if (!entry.ok) {
      const { corrupt } = entry;
      const problems: ValidationProblem[] = [{ kind: "unreadable", message: corrupt.reason }];
      const verdict: CheckpointVerdict = {
        checkpointId: corrupt.checkpointId ?? null,
        status: "invalid",
        problems,
        quarantined: false,
        metadata: undefined,
        corrupt,
        body: undefined,
      };
      yield { verdict, verified: undefined };
      continue;
    }
    const { metadata } = entry;
    const id = metadata.checkpoint_id;
    let checked: StoredCheck;
    try {
      checked = await checkStored(store, id, parents, memo);
    } catch (error) {
      if (!(error instanceof KeyMissingError) || options.sealed !== "report") throw error;
      yield { verdict: await sealedVerdict(store, metadata, error), verified: undefined };
      continue;
    }
    const status = checked.gone ? "gone" : checked.problems.length > 0 ? "invalid" : "valid";
    const verdict: CheckpointVerdict = {
      checkpointId: id,
      status,
      problems: checked.gone ? [] : checked.problems,
      // The record read now, not the listing: the repair may have run since the listing.
      quarantined:
        !checked.gone && status === "invalid" && isQuarantined(checked.record?.metadata ?? metadata),
      metadata,
      corrupt: undefined,
      body: checked.gone ? undefined : bodyOf(checked),
    };
    yield { verdict, verified: verdict.status === "valid" && !checked.gone ? checked.verified : undefined };
  }
  options.onProgress?.(listing.length, listing.length);
}

/**
 * The verdict of a checkpoint the check could not open: its record is read again (the check
 * threw before returning it), still sealed, for the clear outline; a record deleted since is gone.
 */
async function sealedVerdict(
  store: CheckpointStore,
  metadata: StoredMetadata,
  error: KeyMissingError,
): Promise<CheckpointVerdict> {
  const id = metadata.checkpoint_id;
  const record = await store.getCheckpoint(id).catch((readError: unknown) => {
    // Unparseable now though it parsed a moment ago: the outline is unknown, the verdict stays sealed.
    if (readError instanceof CheckpointCorruptError) return null;
    throw readError;
  });
  const base = { checkpointId: id, problems: [], quarantined: false, metadata, corrupt: undefined };
  if (record === undefined) return { ...base, status: "gone", body: undefined };
  return {
    ...base,
    status: "sealed",
    body: record ? tryParseBody(record) : undefined,
    keyMissing: { keyId: error.keyId, kind: error.kind },
  };
}

/** The parts of a checked checkpoint's body the walk's callers read, when the body parses. */
function bodyOf(checked: Extract<StoredCheck, { gone: false }>): CheckpointVerdict["body"] {
  const { verified, record } = checked;
  const body = verified?.body ?? (record ? tryParseBody(record) : undefined);
  if (!body) return undefined;
  const { completed_stages, pending_stages, output_refs } = body;
  const { pipeline_version, output_versions, output_migrations } = body;
  return {
    completed_stages,
    pending_stages,
    output_refs,
    ...(pipeline_version !== undefined ? { pipeline_version } : {}),
    ...(output_versions !== undefined ? { output_versions } : {}),
    ...(output_migrations !== undefined ? { output_migrations } : {}),
  };
}

function tryParseBody(record: CheckpointRecord): CheckpointVerdict["body"] {
  try {
    return readOutline(record.metadata, record.body);
  } catch {
    // Already a problem of the verdict (the check parses the body too), or sealed with no outline.
    return undefined;
  }
}

/**
 * Walks a run and collects every verdict with the run's summary and its history findings. The
 * head record is read before the listing, so a checkpoint written in between is listed, never
 * missed. A run with nothing listed and no head record is `CAIRN_NOT_FOUND`; with a head record
 * its loss is reported.
 */
export async function validateRun(
  store: CheckpointStore,
  pipelineId: string,
  options: WalkOptions = {},
): Promise<RunValidation> {
  assertValidName("pipelineId", pipelineId);
  const read = await readHead(store, pipelineId);
  const listing = options.listing ?? (await store.listCheckpoints(pipelineId));
  if (listing.length === 0 && read.head === undefined && read.finding === undefined) {
    throw new CheckpointNotFoundError(
      pipelineId,
      `No pipeline run with id ${JSON.stringify(pipelineId)} in the store`,
    );
  }
  return validateListed(store, pipelineId, read, listing, options);
}

async function validateListed(
  store: CheckpointStore,
  pipelineId: string,
  read: Awaited<ReturnType<typeof readHead>>,
  listing: ListedCheckpoint[],
  options: WalkOptions,
): Promise<RunValidation> {
  const history = read.finding ? [read.finding] : historyFindings(listing, read.head);
  const checkpoints: CheckpointVerdict[] = [];
  const summary: RunSummary = {
    listed: listing.length,
    valid: 0,
    invalid: 0,
    gone: 0,
    sealed: 0,
    quarantined: 0,
  };
  for await (const { verdict } of walkRun(store, pipelineId, { ...options, listing })) {
    checkpoints.push(verdict);
    summary[verdict.status]++;
    if (verdict.quarantined) summary.quarantined++;
  }
  const valid = summary.invalid === 0 && summary.sealed === 0 && !history.some((f) => f.problem);
  return { pipelineId, valid, checkpoints, summary, listing, history };
}

/**
 * Validates every run in the store, one walk each; a run deleted since the store was listed
 * is left out, and a run whose checkpoints are all gone while its head record says some were
 * written is reported. `onProgress` names the run being walked.
 */
export async function validateAllRuns(
  store: CheckpointStore,
  options: { onProgress?: (done: number, total: number, pipelineId: string) => void } = {},
): Promise<RunValidation[]> {
  const runs: RunValidation[] = [];
  for (const pipelineId of await store.listPipelineIds()) {
    const onProgress =
      options.onProgress && ((d: number, t: number) => options.onProgress?.(d, t, pipelineId));
    const read = await readHead(store, pipelineId);
    const listing = await store.listCheckpoints(pipelineId);
    if (listing.length === 0 && read.head === undefined && read.finding === undefined) continue;
    runs.push(await validateListed(store, pipelineId, read, listing, onProgress ? { onProgress } : {}));
  }
  return runs;
}

/**
 * The one check of a run's newest listing entry, for views of many runs (`cairn list`) where a
 * full walk of every run would cost as much as `validate --all`. Undefined for an empty run.
 */
export async function checkLatest(
  store: CheckpointStore,
  pipelineId: string,
): Promise<CheckpointVerdict | undefined> {
  assertValidName("pipelineId", pipelineId);
  const listing = await store.listCheckpoints(pipelineId);
  const newest = listing.at(-1);
  if (newest === undefined) return undefined;
  for await (const { verdict } of walkRun(store, pipelineId, { listing: [newest], parents: listing })) {
    if (verdict.status !== "gone") return verdict;
  }
  // Deleted since the listing: what is newest now.
  return listing.length > 1 ? checkLatest(store, pipelineId) : undefined;
}
