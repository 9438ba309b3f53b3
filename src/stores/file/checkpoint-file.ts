/**
 * The on-disk format of one checkpoint: `<sequence padded to 10 digits>-<checkpointId>.json`
 * holding `{"metadata":{...},"body":<body>}` and a newline. The body, already canonical JSON,
 * is embedded raw rather than as an escaped string, so the file stays readable by people and
 * `jq`, and an untouched file gives back the exact body bytes the checksum covers.
 */
import { canonicalJson } from "../../core/codec.js";
import { CheckpointCorruptError, InvalidArgumentError, InvalidNameError } from "../../core/errors.js";
import { isValidName } from "../../core/ids.js";
import { type CheckpointRecord, parseStoredMetadata, type StoredMetadata } from "../../core/record.js";

const SEQUENCE_DIGITS = 10;
const MAX_SEQUENCE = 10 ** SEQUENCE_DIGITS - 1;
const FILE_NAME = /^(\d{10})-([A-Za-z0-9][A-Za-z0-9._-]{0,127})\.json$/;
const OUTPUT_NAME = /^([0-9a-f]{64})\.json$/;
const HEAD = '{"metadata":';
const BODY_KEY = ',"body":';
const TAIL = "}\n";

/** What a checkpoint file name says: its sequence and checkpoint id. */
export interface CheckpointFileName {
  sequence: number;
  checkpointId: string;
}

/**
 * The file name of a checkpoint; refuses a sequence that does not fit the padded width, and an
 * id that would not make a plain file name (the path check the store keeps for itself).
 */
export function checkpointFileName(sequence: number, checkpointId: string): string {
  if (!Number.isSafeInteger(sequence) || sequence < 1 || sequence > MAX_SEQUENCE) {
    throw new InvalidArgumentError(
      `checkpoint sequence must be an integer from 1 to ${MAX_SEQUENCE}, got ${sequence}`,
    );
  }
  const name = `${String(sequence).padStart(SEQUENCE_DIGITS, "0")}-${checkpointId}.json`;
  if (!FILE_NAME.test(name)) {
    throw new InvalidNameError("checkpointId", checkpointId, "it does not make a plain file name");
  }
  return name;
}

/** Parses a checkpoint file name; undefined when the name is not one. */
export function parseCheckpointFileName(name: string): CheckpointFileName | undefined {
  const match = FILE_NAME.exec(name);
  if (!match) return undefined;
  return { sequence: Number(match[1]), checkpointId: match[2] as string };
}

/** True when `name` is the file of `checkpointId`, whatever its sequence. */
export function isFileOf(name: string, checkpointId: string): boolean {
  return (
    name.length === SEQUENCE_DIGITS + checkpointId.length + 6 &&
    name.endsWith(`-${checkpointId}.json`) &&
    FILE_NAME.test(name)
  );
}

/**
 * Run folders a checkpoint id may be in, most likely first: ids are made as
 * `{pipelineId}_{stage}_{time}_{suffix}`, and run ids may contain `_` themselves.
 */
export function candidateRuns(checkpointId: string): string[] {
  const runs: string[] = [];
  for (let i = checkpointId.lastIndexOf("_"); i > 0; i = checkpointId.lastIndexOf("_", i - 1)) {
    const prefix = checkpointId.slice(0, i);
    if (isValidName(prefix)) runs.push(prefix);
  }
  return runs;
}

/** The file name of an output; refuses anything but a SHA-256 hex digest, which keeps it a plain name. */
export function outputFileName(hash: unknown): string {
  const name = `${String(hash)}.json`;
  if (typeof hash !== "string" || !OUTPUT_NAME.test(name)) {
    throw new InvalidArgumentError(
      `output hash must be 64 lowercase hex characters, got ${JSON.stringify(hash)}`,
    );
  }
  return name;
}

/** The hash an output file name holds; undefined for any other name. */
export function parseOutputFileName(name: string): string | undefined {
  return OUTPUT_NAME.exec(name)?.[1];
}

/** The text of a checkpoint file. */
export function formatCheckpointFile(metadata: StoredMetadata, body: string): string {
  return `${HEAD}${JSON.stringify(metadata)}${BODY_KEY}${body}${TAIL}`;
}

/** Where a checkpoint file was found, to check its content against. */
export interface ExpectedCheckpoint {
  pipelineId: string;
  checkpointId: string;
  sequence: number;
  /** Absolute path, for messages. */
  path: string;
}

const corrupt = (expected: ExpectedCheckpoint, reason: string, cause?: unknown) =>
  new CheckpointCorruptError(expected.checkpointId, `${expected.path}: ${reason}`, { cause });

/**
 * Parses the text of a checkpoint file; throws {@link CheckpointCorruptError} (naming the file)
 * when it does not parse, its metadata is malformed, or the metadata disagrees with the file's
 * name and folder, since such a file would otherwise be found under the wrong id or run.
 */
export function parseCheckpointFile(text: string, expected: ExpectedCheckpoint): CheckpointRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw corrupt(expected, `not valid JSON (${(error as Error).message})`, error);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw corrupt(expected, "not a JSON object");
  }
  const file = parsed as { metadata?: unknown; body?: unknown };
  if (file.metadata === undefined) throw corrupt(expected, "metadata is missing");
  if (file.body === undefined) throw corrupt(expected, "body is missing");
  const metadata = parseStoredMetadata(file.metadata, expected.path);
  const mismatches: string[] = [];
  if (metadata.checkpoint_id !== expected.checkpointId) {
    mismatches.push(`checkpoint_id ${JSON.stringify(metadata.checkpoint_id)} does not match the file name`);
  }
  if (metadata.sequence !== expected.sequence) {
    mismatches.push(`sequence ${metadata.sequence} does not match the file name`);
  }
  if (metadata.pipeline_id !== expected.pipelineId) {
    mismatches.push(`pipeline_id ${JSON.stringify(metadata.pipeline_id)} does not match the run folder`);
  }
  if (mismatches.length > 0) throw corrupt(expected, mismatches.join("; "));
  return { metadata, body: rawBody(text, file) ?? canonicalJson(file.body) };
}

/**
 * The body bytes sliced straight from a file in the exact layout {@link formatCheckpointFile}
 * writes, which skips re-serializing a large body; undefined when the layout differs (a file
 * edited by hand), and the caller re-canonicalizes the parsed body instead.
 */
function rawBody(text: string, file: { metadata?: unknown; body?: unknown }): string | undefined {
  if (Object.keys(file).length !== 2 || !text.startsWith(HEAD) || !text.endsWith(TAIL)) return undefined;
  const head = `${HEAD}${JSON.stringify(file.metadata)}${BODY_KEY}`;
  if (!text.startsWith(head)) return undefined;
  const body = text.slice(head.length, text.length - TAIL.length);
  return /^\s|\s$/.test(body) ? undefined : body;
}
