/**
 * `cairn inspect` on LangGraph threads: which record `--thread`/`--namespace`/`--checkpoint-id`
 * name, and the LangGraph part of the inspection of any thread record (named either way).
 */
import { CheckpointCorruptError, KeyMissingError } from "../../core/errors.js";
import { assertValidName } from "../../core/ids.js";
import { findThreadRun, readThreadRun } from "../../debug/thread.js";
import { findThreadRecord, inspectThreadRecord, type ThreadInspection } from "../../debug/thread-inspect.js";
import type { CheckpointManager } from "../../index.js";
import { isThreadRun } from "../../langgraph/ids.js";
import { CommandExit, ExitCode } from "../exit-codes.js";
import type { ThreadFlags } from "../thread-args.js";

/**
 * The cairn id of the record to inspect, and its LangGraph part when it is a thread record. With
 * `--thread`, `--checkpoint-id` may be a cairn id, a LangGraph id or part of one; without it, the
 * namespace's latest checkpoint. A record whose run cannot be walked is inspected without the part.
 */
export async function threadPart(
  manager: CheckpointManager,
  flags: ThreadFlags & { checkpointId?: string },
): Promise<{ checkpointId: string; langgraph: ThreadInspection | undefined }> {
  if (flags.thread !== undefined) {
    const runId = await findThreadRun(manager, flags.thread, flags.namespace);
    const { threadId, ...ns } = await readThreadRun(manager, runId);
    const record = flags.checkpointId !== undefined ? findThreadRecord(ns, flags.checkpointId) : ns.latest;
    if (record === undefined)
      throw new CommandExit(ExitCode.NotFound, `run ${runId} holds no readable LangGraph checkpoint`);
    return {
      checkpointId: record.cairnId,
      langgraph: inspectThreadRecord(ns, threadId ?? flags.thread, record),
    };
  }
  const checkpointId = flags.checkpointId as string;
  // Before any read: a name that could walk out of a file store is a usage error.
  assertValidName("checkpointId", checkpointId);
  const store = await manager.getStore();
  let runId: string | undefined;
  try {
    runId = (await store.getCheckpoint(checkpointId))?.metadata.pipeline_id;
  } catch (error) {
    // An unreadable record: the inspection says why.
    if (!(error instanceof CheckpointCorruptError)) throw error;
  }
  if (runId === undefined || !isThreadRun(runId)) return { checkpointId, langgraph: undefined };
  try {
    const { threadId, ...ns } = await readThreadRun(manager, runId);
    const record =
      ns.checkpoints.find((c) => c.cairnId === checkpointId) ??
      ns.writes.find((w) => w.cairnId === checkpointId);
    return { checkpointId, langgraph: record ? inspectThreadRecord(ns, threadId, record) : undefined };
  } catch (error) {
    if (error instanceof KeyMissingError) return { checkpointId, langgraph: undefined };
    throw error;
  }
}
