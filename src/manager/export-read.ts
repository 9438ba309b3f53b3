/**
 * Reading an export file for import with bounded strings. The file's size is checked before any
 * of it is read (`maxImportBytes`). A run export as cairn writes it holds one checkpoint per line
 * (`{head…,"checkpoints":[` / `{checkpoint},` … / `]…}`), so it is parsed a line at a time and no
 * string holds more than one checkpoint; any other layout of valid JSON is parsed whole.
 */
import { type FileHandle, open } from "node:fs/promises";
import {
  CheckpointCorruptError,
  CheckpointNotFoundError,
  InvalidArgumentError,
  isStringTooLong,
  MAX_STRING_LENGTH,
  TooLargeError,
} from "../core/errors.js";
import { hasCode } from "../util/fs-util.js";
import { byteLimit, DEFAULT_MAX_IMPORT_BYTES } from "./limits.js";
import { checkExportVersion } from "./transfer.js";

/** How the first line of a run export, as cairn writes it, ends. */
const RUN_HEAD_END = '"checkpoints":[';

/**
 * Reads and parses an export file, refusing one over `maxBytes` (default 1 GiB) with
 * `CAIRN_TOO_LARGE` before reading it. A missing file is `CAIRN_NOT_FOUND`, text that is not a
 * cairn export `CAIRN_CORRUPT`, the file of a newer cairn `CAIRN_FORMAT_TOO_NEW`.
 */
export async function readExport(path: string, maxBytes?: number): Promise<Record<string, unknown>> {
  if (typeof path !== "string" || path.length === 0)
    throw new InvalidArgumentError("import path must be a file path");
  const limit = byteLimit("maxImportBytes", maxBytes, DEFAULT_MAX_IMPORT_BYTES);
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    if (hasCode(error, "ENOENT"))
      throw new CheckpointNotFoundError(path, `Export file ${path} does not exist`);
    throw error;
  }
  try {
    const { size } = await handle.stat();
    if (size > limit) throw new TooLargeError(`Export file ${path}`, size, limit);
    const byLines = await readByLines(handle, path);
    const parsed = byLines === OTHER_LAYOUT ? await readWhole(handle, path, size) : byLines;
    return checkExportVersion(parsed, path);
  } finally {
    await handle.close();
  }
}

/** What {@link readByLines} returns for a file not laid out as cairn writes exports. */
const OTHER_LAYOUT = Symbol("other layout");

/** Parses an export as cairn writes it: a run a checkpoint per line, one checkpoint on one line. */
async function readByLines(handle: FileHandle, path: string): Promise<unknown> {
  const found = await splitLines(handle, path);
  if (found === undefined) return OTHER_LAYOUT;
  if ("single" in found) {
    try {
      return JSON.parse(found.single);
    } catch (error) {
      throw new CheckpointCorruptError(undefined, `${path} is not valid JSON`, { cause: error });
    }
  }
  const parsed = parseOrUndefined(found.head + found.tail);
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return OTHER_LAYOUT;
  // The head and tail parse as the file does without its checkpoints: put them back in place.
  (parsed as Record<string, unknown>).checkpoints = found.checkpoints;
  return parsed;
}

type Lines = { single: string } | { head: string; tail: string; checkpoints: unknown[] };

/** The file's lines as the layouts cairn writes; undefined for any other layout. */
async function splitLines(handle: FileHandle, path: string): Promise<Lines | undefined> {
  let head: string | undefined;
  let tail: string | undefined;
  const checkpoints: unknown[] = [];
  let comma = false;
  try {
    for await (const line of readLines(handle, path)) {
      if (head === undefined) {
        head = line;
        if (!line.endsWith(RUN_HEAD_END)) tail = "";
      } else if (tail !== undefined) {
        if (line.trim() !== "") return undefined;
      } else if (line.startsWith("]")) {
        if (comma || checkpoints.length === 0) return undefined;
        tail = line;
      } else {
        if (checkpoints.length > 0 && !comma) return undefined;
        comma = line.endsWith(",");
        const item = parseOrUndefined(comma ? line.slice(0, -1) : line);
        if (item === undefined) return undefined;
        checkpoints.push(item);
      }
    }
  } catch (error) {
    if (isStringTooLong(error))
      throw new TooLargeError(`A line of export file ${path}`, undefined, MAX_STRING_LENGTH, {
        cause: error,
      });
    throw error;
  }
  if (head === undefined || tail === undefined) return undefined;
  return tail === "" && !head.endsWith(RUN_HEAD_END) ? { single: head } : { head, tail, checkpoints };
}

const CHUNK = 1024 * 1024;

/**
 * The file's lines (`\n` or `\r\n`), each decoded as UTF-8. A line longer than a string can
 * hold is `CAIRN_TOO_LARGE`, found by counting bytes before the line is built.
 */
async function* readLines(handle: FileHandle, path: string): AsyncGenerator<string> {
  let parts: Buffer[] = [];
  let length = 0;
  const take = (end: Buffer): string => {
    const bytes = parts.length === 0 ? end : Buffer.concat([...parts, end]);
    parts = [];
    length = 0;
    const last = bytes.length - 1;
    return bytes.toString("utf8", 0, last >= 0 && bytes[last] === 0x0d ? last : bytes.length);
  };
  for (let position = 0; ; ) {
    const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(CHUNK), 0, CHUNK, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    const chunk = buffer.subarray(0, bytesRead);
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      yield take(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.length) {
      length += chunk.length - start;
      // UTF-8 takes at least a byte per UTF-16 code unit: a line of more bytes may not fit a string.
      if (length > MAX_STRING_LENGTH)
        throw new TooLargeError(`A line of export file ${path}`, undefined, MAX_STRING_LENGTH);
      parts.push(Buffer.from(chunk.subarray(start)));
    }
  }
  if (parts.length > 0) yield take(Buffer.alloc(0));
}

function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Parses the whole file as one JSON text (a single-checkpoint export, or one laid out by hand). */
async function readWhole(handle: FileHandle, path: string, size: number): Promise<unknown> {
  // UTF-8 never takes fewer bytes than UTF-16 code units: a file this size always fits a string.
  if (size > MAX_STRING_LENGTH) {
    throw new TooLargeError(
      `Export file ${path}, not laid out one checkpoint per line,`,
      size,
      MAX_STRING_LENGTH,
    );
  }
  const text = await handle.readFile({ encoding: "utf8" });
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CheckpointCorruptError(undefined, `${path} is not valid JSON`, { cause: error });
  }
}
