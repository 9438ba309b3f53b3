/**
 * The record formats this cairn reads, oldest first, and the rules that join them. Every record
 * says which format wrote it (`format_version`). Reading one verifies its checksum by the rule
 * of **its** format, parses its body by that format's rules, then applies the upcasters — pure
 * functions `vN → vN+1`, in memory — one after the other up to the current format. Writing always
 * uses the current format, so a store never has to be rewritten to be read. A record newer than
 * the newest format is `FormatTooNewError`; one older than the oldest is corrupt.
 *
 * To add a format: append an entry, give the previous newest an `upcast` to it, bump
 * `FORMAT_VERSION`, and keep the old entries (and their golden fixtures) as they are.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "./codec.js";
import { CheckpointCorruptError, FormatTooNewError } from "./errors.js";
import type { CheckpointBody, StoredMetadata } from "./record.js";
import { assertOpened, isEnvelope } from "./sealed.js";
import { FORMAT_VERSION } from "./types.js";

/** A parsed body, in the shape of the format that wrote it. */
export type StoredBody = Record<string, unknown>;

/** One record format: how its checksum is computed, how its body is parsed, how it is upcast. */
export interface RecordFormat {
  /** The `format_version` of its records. */
  readonly version: number;
  /** One line: what changed in this format. */
  readonly description: string;
  /** The record's checksum by this format's rule. */
  checksum(metadata: StoredMetadata, bodyText: string): string;
  /** Parses and checks a body of this format; `CheckpointCorruptError` when malformed. */
  parseBody(checkpointId: string, bodyText: string): StoredBody;
  /**
   * The body's fields other than `state_data` and `output_refs`: what an export line carries
   * of it, so the importer can rebuild the body text exactly and check the checksum.
   */
  readonly fields: readonly string[];
  /** This body in the next format's shape; pure, in memory. Every format but the newest has one. */
  upcast?(body: StoredBody, metadata: StoredMetadata): StoredBody;
}

const IMMUTABLE_FIELDS = [
  "checkpoint_id",
  "pipeline_id",
  "pipeline_name",
  "stage_name",
  "stage_index",
  "sequence",
  "timestamp",
  "data_size",
  "parent_checkpoint_id",
  "parent_checksum",
  "format_version",
] as const satisfies readonly (keyof StoredMetadata)[];

/**
 * The checksum rule of formats 1 and 2: SHA-256 of the canonical immutable metadata fields
 * (`parent_checksum` chains a run), a newline and the body text.
 */
export function computeChecksum(metadata: StoredMetadata, body: string): string {
  const header: Record<string, unknown> = {};
  for (const field of IMMUTABLE_FIELDS) header[field] = metadata[field];
  return createHash("sha256").update(canonicalJson(header)).update("\n").update(body).digest("hex");
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);
const isStringList = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === "string");
const isStringMap = (v: unknown) => isObject(v) && Object.values(v).every((s) => typeof s === "string");
const isPositiveInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 1;

/** JSON-parses a body (refusing one still sealed); `CheckpointCorruptError` when it is not an object. */
export function parseJsonBody(checkpointId: string, bodyText: string): Record<string, unknown> {
  // Still sealed (no key to open it): encrypted, not corrupt; nothing may treat it as damage.
  assertOpened(bodyText, `Checkpoint ${checkpointId}`, checkpointId);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch (error) {
    throw new CheckpointCorruptError(checkpointId, "body is not valid JSON", { cause: error });
  }
  // An array goes on to the field checks, which name every field it lacks.
  if (parsed === null || typeof parsed !== "object")
    throw new CheckpointCorruptError(checkpointId, "body is not an object");
  return parsed as Record<string, unknown>;
}

/** Problems with the fields formats 1 and 2 share. */
function v1Problems(b: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (!isStringList(b.completed_stages)) problems.push("completed_stages is not a list of names");
  if (!isStringList(b.pending_stages)) problems.push("pending_stages is not a list of names");
  if (!isStringMap(b.provenance_hashes)) problems.push("provenance_hashes is not a map of hashes");
  if (!isStringMap(b.output_refs)) problems.push("output_refs is not a map of hashes");
  if (!("state_data" in b)) problems.push("state_data is missing");
  return problems;
}

/** Problems with the fields format 2 adds. */
function v2Problems(b: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const refs = isObject(b.output_refs) ? Object.keys(b.output_refs) : [];
  if (b.pipeline_version !== null && typeof b.pipeline_version !== "string")
    problems.push("pipeline_version is neither a string nor null");
  const versions = b.output_versions;
  if (!isObject(versions) || !Object.values(versions).every(isPositiveInt)) {
    problems.push("output_versions is not a map of positive integers");
  } else {
    const keys = Object.keys(versions);
    if (keys.length !== refs.length || !refs.every((s) => Object.hasOwn(versions, s)))
      problems.push("output_versions does not name exactly the stages of output_refs");
  }
  const migrations = b.output_migrations;
  if (!isObject(migrations)) problems.push("output_migrations is not an object");
  else {
    for (const [stage, m] of Object.entries(migrations)) {
      const ok =
        isObject(m) &&
        isPositiveInt(m.from) &&
        isPositiveInt(m.to) &&
        m.from < m.to &&
        (m.by === null || typeof m.by === "string") &&
        refs.includes(stage);
      if (!ok) problems.push(`output_migrations.${stage} is not a migration of a stored output`);
    }
  }
  return problems;
}

function checked(checkpointId: string, body: Record<string, unknown>, problems: string[]): StoredBody {
  if (problems.length > 0) throw new CheckpointCorruptError(checkpointId, problems);
  return body;
}

/** Format 1: the body of cairn 0.1, `{ completed_stages, output_refs, pending_stages, provenance_hashes, state_data }`. */
export const FORMAT_V1: RecordFormat = {
  version: 1,
  description: "stage lists, provenance hashes, output references and the state",
  checksum: (metadata, bodyText) => computeChecksum(metadata, bodyText),
  parseBody(checkpointId, bodyText) {
    const b = parseJsonBody(checkpointId, bodyText);
    return checked(checkpointId, b, v1Problems(b));
  },
  fields: ["completed_stages", "pending_stages", "provenance_hashes"],
  upcast: (body) => ({
    ...body,
    pipeline_version: null,
    output_versions: Object.fromEntries(Object.keys(body.output_refs as object).map((s) => [s, 1])),
    output_migrations: {},
  }),
};

/** Format 2: format 1 plus the pipeline version and each stored output's version and migration. */
export const FORMAT_V2: RecordFormat = {
  version: 2,
  description: "format 1 plus pipeline_version, output_versions and output_migrations",
  checksum: (metadata, bodyText) => computeChecksum(metadata, bodyText),
  parseBody(checkpointId, bodyText) {
    const b = parseJsonBody(checkpointId, bodyText);
    return checked(checkpointId, b, [...v1Problems(b), ...v2Problems(b)]);
  },
  fields: [
    "completed_stages",
    "output_migrations",
    "output_versions",
    "pending_stages",
    "pipeline_version",
    "provenance_hashes",
  ],
};

/** The formats cairn ships, oldest first. */
export const BUILTIN_FORMATS: readonly RecordFormat[] = [FORMAT_V1, FORMAT_V2];

let registry: readonly RecordFormat[] = BUILTIN_FORMATS;

/** Throws unless `formats` is ordered, contiguous, ends at `FORMAT_VERSION` and upcasts all but the newest. */
function checkRegistry(formats: readonly RecordFormat[]): void {
  const last = formats.at(-1);
  if (last?.version !== FORMAT_VERSION)
    throw new Error(`record formats must end at the current format version ${FORMAT_VERSION}`);
  formats.forEach((format, i) => {
    const next = formats[i + 1];
    if (next && next.version !== format.version + 1)
      throw new Error(`record formats must be contiguous: ${format.version} then ${next.version}`);
    if (next && !format.upcast) throw new Error(`record format ${format.version} has no upcaster`);
  });
}

/**
 * Installs another registry (tests register a synthetic older format); returns the function that
 * restores the previous one. Not part of the package's API.
 */
export function useRecordFormats(formats: readonly RecordFormat[]): () => void {
  checkRegistry(formats);
  const previous = registry;
  registry = [...formats];
  return () => {
    registry = previous;
  };
}

/** The formats this cairn reads, oldest first. */
export function recordFormats(): readonly RecordFormat[] {
  return registry;
}

/** The oldest format version this cairn reads. */
export function oldestFormatVersion(): number {
  return (registry[0] as RecordFormat).version;
}

/**
 * The format of a record: `FormatTooNewError` above the newest, `CheckpointCorruptError` below
 * the oldest (no cairn that reads this store wrote it).
 */
export function formatOf(
  metadata: Pick<StoredMetadata, "checkpoint_id" | "format_version">,
  where?: string,
): RecordFormat {
  const version = metadata.format_version;
  const place = where ?? `checkpoint ${metadata.checkpoint_id}`;
  if (version > FORMAT_VERSION)
    throw new FormatTooNewError("checkpoint record", place, version, FORMAT_VERSION);
  const format = registry.find((f) => f.version === version);
  if (!format)
    throw new CheckpointCorruptError(
      metadata.checkpoint_id,
      `format version ${version} is not one this cairn knows (it reads ${oldestFormatVersion()} to ${FORMAT_VERSION})`,
    );
  return format;
}

/** A body read by its own format, and upcast to the current one. */
export interface ReadBody {
  /** The body as stored, in its own format's shape (what exports carry). */
  stored: StoredBody;
  /** The body upcast to the current format. */
  current: CheckpointBody;
}

/** Upcasts a body parsed by `format` step by step to the current format. */
export function upcastBody(
  stored: StoredBody,
  format: RecordFormat,
  metadata: StoredMetadata,
): CheckpointBody {
  const start = registry.findIndex((f) => f.version === format.version);
  if (start < 0) throw new Error(`record format ${format.version} is not registered`);
  let body = stored;
  // Each step once, oldest first: the registry is ordered and contiguous (checkRegistry).
  for (const step of registry.slice(start, -1)) {
    body = (step.upcast as NonNullable<RecordFormat["upcast"]>)(body, metadata);
  }
  return body as unknown as CheckpointBody;
}

/**
 * Parses a stored body by the rules of the format that wrote it and upcasts it to the current
 * format. The checksum is the caller's (see `verify.ts`); this never writes anything.
 */
export function readBody(metadata: StoredMetadata, bodyText: string): ReadBody {
  const format = formatOf(metadata);
  const stored = format.parseBody(metadata.checkpoint_id, bodyText);
  return { stored, current: upcastBody(stored, format, metadata) };
}

/** Parses and upcasts a stored body: the current-format body. See {@link readBody}. */
export function parseBody(metadata: StoredMetadata, bodyText: string): CheckpointBody {
  return readBody(metadata, bodyText).current;
}

/**
 * The output references of a body that may be damaged (for backups before a repair): every format
 * so far keeps `output_refs` at the top of the body, or of a sealed body's clear outline `o`.
 * Undefined when nothing usable parses. Never a reading of the record: see {@link readBody}.
 */
export function salvageOutputRefs(bodyText: string): Record<string, string> | undefined {
  try {
    const parsed = JSON.parse(bodyText) as { output_refs?: unknown; o?: { output_refs?: unknown } } | null;
    const refs = isEnvelope(bodyText) ? parsed?.o?.output_refs : parsed?.output_refs;
    if (!isObject(refs)) return undefined;
    return Object.fromEntries(
      Object.entries(refs).filter((e): e is [string, string] => typeof e[1] === "string"),
    );
  } catch {
    return undefined;
  }
}

/** The checksum a record should carry by its own format's rule. */
export function recordChecksum(metadata: StoredMetadata, bodyText: string): string {
  return formatOf(metadata).checksum(metadata, bodyText);
}

/**
 * The text of a body from its fields: canonical JSON with sorted keys, `state_data` embedded as
 * its canonical text (already encoded, never encoded again). Every format's bodies are written so.
 */
export function bodyText(fields: Record<string, unknown>, stateText: string): string {
  const parts = Object.keys(fields)
    .filter((k) => k !== "state_data")
    .map((k) => [k, canonicalJson(fields[k])] as const);
  parts.push(["state_data", stateText]);
  parts.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${parts.map(([k, text]) => `${JSON.stringify(k)}:${text}`).join(",")}}`;
}
