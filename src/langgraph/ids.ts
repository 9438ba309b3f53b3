/**
 * How LangGraph threads map onto cairn runs. Pure functions without any LangGraph import, so the
 * CLI can address threads without loading the optional peer.
 *
 * One run per (thread, namespace). Every namespace of a thread shares one pipeline name, so the
 * runs-by-name index finds a thread's namespaces without scanning the store. Readable parts keep
 * `cairn list` legible; the hashes keep distinct threads and namespaces apart whatever their text.
 */
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../core/errors.js";
import { MAX_NAME_LENGTH } from "../core/ids.js";

/** Prefix of every thread's pipeline name and run id. */
export const THREAD_PREFIX = "lg.";

const hex12 = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 12);

/** Letters, digits, `_` and `-` of `text`, others as `_`, at most `max` characters. */
function readable(text: string, max: number): string {
  const cleaned = text.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, max);
  return cleaned.length > 0 ? cleaned : "_";
}

/** Throws `CAIRN_INVALID_ARGUMENT` unless `threadId` is a non-empty string. */
export function assertThreadId(threadId: unknown): string {
  if (typeof threadId !== "string" || threadId.length === 0)
    throw new InvalidArgumentError(
      `a LangGraph thread_id must be a non-empty string, got ${JSON.stringify(threadId)}`,
    );
  return threadId;
}

/**
 * The pipeline name every run of thread `threadId` has: `lg.<readable thread>.<hash>`. The
 * lengths leave room, in 128 characters, for a subgraph's run id, a uuid6 checkpoint id and a
 * pending-writes suffix (at most 110 in all).
 */
export function threadPipelineName(threadId: string): string {
  assertThreadId(threadId);
  return `${THREAD_PREFIX}${readable(threadId, 24)}.${hex12(`thread\0${threadId}`)}`;
}

/** The run id of namespace `checkpointNs` of thread `threadId` ("" is the root namespace). */
export function threadRunId(threadId: string, checkpointNs = ""): string {
  const name = threadPipelineName(threadId);
  if (checkpointNs === "") return name;
  // A subgraph namespace is `node:task-id|child:task-id`: the first node names it readably.
  const node = checkpointNs.split(/[:|]/, 1)[0] ?? "";
  return `${name}.${readable(node, 12)}.${hex12(`ns\0${threadId}\0${checkpointNs}`)}`;
}

/** True when `pipelineId` (or a pipeline name) is a LangGraph thread's. */
export function isThreadRun(pipelineId: string): boolean {
  return pipelineId.startsWith(THREAD_PREFIX);
}

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;

/**
 * The cairn checkpoint id of LangGraph checkpoint `checkpointId` in run `runId`: the LangGraph id
 * itself when it is name-safe (uuid6 ids are, and keep their order), else a hash of it.
 */
export function threadCheckpointId(runId: string, checkpointId: string): string {
  const part = SAFE_ID.test(checkpointId)
    ? checkpointId
    : `h${hex12(`cp\0${checkpointId}`)}${hex12(checkpointId)}`;
  const id = `${runId}.${part}`;
  if (id.length > MAX_NAME_LENGTH - 6) throw new Error(`thread checkpoint id too long: ${id}`);
  return id;
}

/** The id of the `n`th pending-writes record (from 1) of the checkpoint with cairn id `cairnId`. */
export function writesRecordId(cairnId: string, n: number): string {
  return `${cairnId}.w${n}`;
}
