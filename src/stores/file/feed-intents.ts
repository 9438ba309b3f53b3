/**
 * The file store's feed intents: how a change gets into the log although the store has no
 * transactions. Under the run's lock, before its commit (the rename or link that makes the
 * change visible), a writer records what it is about to change, and how to tell afterwards
 * whether it did, in `basePath/.feed/pending/<pipelineId>.json` (flushed). After the commit it
 * appends the changes that happened to the log and removes the intent ("settles" it).
 *
 * A writer killed in between leaves the intent. Whoever settles it next, under the same run
 * lock (the run's next writer, before its own change; or `readChanges`/`setup` once the writer
 * is provably gone), judges each change by what is on disk, never by the writer's word: a
 * checkpoint file with exactly the intended content, a file gone, a run folder that is no longer
 * the same folder (inode) or is the staged one. So a committed change is never lost, and a
 * change that did not commit is never reported. An intent also names the log position before
 * it, and every change its nonce, so a settle repeated after a crash finds what was already
 * appended and never appends a change twice (unless retention removed it meanwhile).
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { CheckpointCorruptError } from "../../core/errors.js";
import { isValidName } from "../../core/ids.js";
import {
  discardTemps,
  isTempName,
  replaceFile,
  type TempFile,
  unlinkIfPresent,
} from "../../util/atomic-file.js";
import { hasCode, readdirIfPresent } from "../../util/fs-util.js";
import { isGoneLocalOwner } from "../../util/local-owner.js";
import type { ChangeType } from "../types.js";
import { FEED_DIR, type FeedEntry, type FeedLog } from "./feed-log.js";
import { ensureDir, syncDir } from "./run-folders.js";

/** Intents, inside the base folder. */
export const PENDING_DIR = join(FEED_DIR, "pending");

/** An intent no process settled for this long is settled by whoever looks (its writer's host may be another). */
export const STALE_INTENT_MS = 60_000;

/**
 * How to tell whether a change committed; paths are relative to the base folder.
 * `content`: the file holds exactly this text (by hash). `gone`: the file is absent.
 * `replaced`: the folder is absent or another folder (inode) than the one recorded.
 * `published`: the folder is the staged folder recorded (an import renamed into place).
 */
export type CommitTest =
  | { kind: "content"; path: string; sha256: string }
  | { kind: "gone"; path: string }
  | { kind: "replaced"; path: string; inode: string }
  | { kind: "published"; path: string; inode: string; staged: string; journal: string };

/** One change a writer is about to make. */
export interface IntendedChange {
  type: ChangeType;
  pipelineName: string;
  checkpointId?: string;
  sequence?: number;
  test: CommitTest;
}

/** A writer's intent as written. */
export interface Intent {
  owner: string;
  nonce: string;
  /** A log position no higher than the newest when the intent was written. */
  after: number;
  pipelineId: string;
  changes: IntendedChange[];
}

/** The SHA-256 of a text, for `content` tests. */
export const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

/** The folder's identity (device and inode), or undefined when absent. */
export function inodeOf(path: string): string | undefined {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}`;
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR")) return undefined;
    throw error;
  }
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR", "EISDIR")) return undefined;
    throw error;
  }
}

const intentPath = (basePath: string, pipelineId: string) =>
  join(basePath, PENDING_DIR, `${pipelineId}.json`);

/** A writer's new intent (not written yet). */
export function newIntent(log: FeedLog, pipelineId: string, changes: IntendedChange[]): Intent {
  const nonce = randomBytes(8).toString("hex");
  const owner = `${hostname()}:${process.pid}:${nonce}`;
  return { owner, nonce, after: log.lowerBound(), pipelineId, changes };
}

/** The log entry of an intent's change `i`, stamped now. */
export function entryOf(intent: Intent, i: number): FeedEntry {
  const { type, pipelineName, checkpointId, sequence } = intent.changes[i] as IntendedChange;
  const ids = checkpointId === undefined ? {} : { checkpointId, sequence };
  const at = new Date().toISOString();
  return { type, pipelineId: intent.pipelineId, pipelineName, ...ids, at, change: `${intent.nonce}-${i}` };
}

/** Records a writer's intent durably; the caller holds the run's lock and commits next. */
export async function writeIntent(basePath: string, fsync: boolean, intent: Intent): Promise<void> {
  const { pipelineId } = intent;
  const dir = join(basePath, PENDING_DIR);
  if (ensureDir(dir)) await syncDir(join(basePath, FEED_DIR), fsync);
  await replaceFile(dir, `${pipelineId}.json`, JSON.stringify(intent), fsync);
  await syncDir(dir, fsync);
}

function readIntent(basePath: string, pipelineId: string): Intent | undefined {
  const path = intentPath(basePath, pipelineId);
  const text = readIfPresent(path);
  if (text === undefined) return undefined;
  try {
    const intent = JSON.parse(text) as Intent;
    if (
      typeof intent.nonce === "string" &&
      Array.isArray(intent.changes) &&
      Number.isSafeInteger(intent.after)
    )
      return intent;
  } catch {
    // Reported below: an intent is written whole (temp file and rename), so this is damage.
  }
  throw new CheckpointCorruptError(
    undefined,
    `${path}: not a change feed intent (remove it once the run is checked)`,
  );
}

/** Whether the change committed; finishes an import a killed publish left half-way, as setup would. */
async function committed(basePath: string, test: CommitTest, fsync: boolean): Promise<boolean> {
  const path = join(basePath, test.path);
  switch (test.kind) {
    case "content": {
      const text = readIfPresent(path);
      return text !== undefined && sha256(text) === test.sha256;
    }
    case "gone":
      return !existsSync(path);
    case "replaced":
      return inodeOf(path) !== test.inode;
    case "published": {
      const staged = join(basePath, test.staged);
      if (existsSync(join(basePath, test.journal)) && !existsSync(path) && existsSync(staged)) {
        // The old run was moved aside and the staged one not yet moved in: `recoverLeftovers`
        // would finish this at the next setup, so it is finished now, under the run's lock.
        renameSync(staged, path);
        await syncDir(basePath, fsync);
      }
      return inodeOf(path) === test.inode;
    }
  }
}

/** The change ids of this intent already in the log (a settle cut short by a crash). */
function alreadyAppended(log: FeedLog, intent: Intent): Set<string> {
  const found = new Set<string>();
  let position = Math.max(intent.after, log.trimmedThrough());
  for (;;) {
    const { entries } = log.read(position, 1000);
    for (const { entry } of entries) if (entry.change.startsWith(`${intent.nonce}-`)) found.add(entry.change);
    if (entries.length < 1000) return found;
    position = (entries.at(-1) as { position: number }).position;
  }
}

/**
 * How a settle judges its intent: `committed`, by the writer that just committed all of it;
 * `unsure`, by a writer whose write failed (at any step, maybe after its commit); `recovering`,
 * by anyone else (the writer was killed, maybe half-way through appending).
 */
export type SettleMode = "committed" | "unsure" | "recovering";

/**
 * Settles the run's intent, if any: appends each change that committed and is not in the log
 * yet, in order, then removes the intent. The caller holds the run's lock. A writer passes the
 * intent it wrote (`own`): if the file is no longer it, someone settled it meanwhile (the run's
 * lock was broken while this writer held it, which only a holder on another host stalled for
 * long can see), so the log is searched first: never lost, and appended twice only if the other
 * settle judged it before the commit. Returns the positions appended.
 */
export async function settleIntent(
  basePath: string,
  log: FeedLog,
  fsync: boolean,
  pipelineId: string,
  mode: SettleMode,
  own?: Intent,
  /** With `own` in mode `committed`: its changes' files, prepared before the commit. */
  prepared: TempFile[] = [],
): Promise<number[]> {
  const onDisk = readIntent(basePath, pipelineId);
  const intent = own ?? onDisk;
  if (intent === undefined) return [];
  const taken = onDisk?.nonce !== intent.nonce;
  const done = mode === "recovering" || taken ? alreadyAppended(log, intent) : new Set<string>();
  let positions: number[] = [];
  const chosen: number[] = [];
  try {
    for (const [i, change] of intent.changes.entries()) {
      if (done.has(`${intent.nonce}-${i}`)) continue;
      if (mode !== "committed" && !(await committed(basePath, change.test, fsync))) continue;
      chosen.push(i);
    }
    const usable = mode === "committed" && !taken && prepared.length === intent.changes.length;
    const files = usable
      ? chosen.map((i) => prepared[i] as TempFile)
      : await log.prepare(chosen.map((i) => entryOf(intent, i)));
    positions = await log.place(files);
  } finally {
    discardTemps(prepared);
  }
  // Not flushed: an intent that comes back after a power loss is settled again, and finds its
  // changes in the log by their ids. Another writer's intent is left to it.
  if (!taken) unlinkIfPresent(intentPath(basePath, pipelineId));
  return positions;
}

function removeIfOlder(path: string, ms: number): void {
  try {
    if (Date.now() - statSync(path).mtimeMs > ms) unlinkIfPresent(path);
  } catch (error) {
    if (!hasCode(error, "ENOENT")) throw error;
  }
}

/** Runs whose intent was left by a writer that is gone (this host) or has not settled it for long. */
export function abandonedIntents(basePath: string): string[] {
  const dir = join(basePath, PENDING_DIR);
  const runs: string[] = [];
  for (const name of readdirIfPresent(dir) ?? []) {
    // A killed writer's temp file: a live one renames it into place within moments.
    if (isTempName(name)) removeIfOlder(join(dir, name), STALE_INTENT_MS);
    if (!name.endsWith(".json") || name.startsWith(".")) continue;
    const pipelineId = name.slice(0, -".json".length);
    if (!isValidName(pipelineId)) continue;
    let intent: Intent | undefined;
    let age = 0;
    try {
      intent = readIntent(basePath, pipelineId);
      age = Date.now() - statSync(intentPath(basePath, pipelineId)).mtimeMs;
    } catch (error) {
      // Settled meanwhile; a damaged one is reported by the run's next writer, under its lock.
      if (hasCode(error, "ENOENT") || error instanceof CheckpointCorruptError) continue;
      throw error;
    }
    if (intent && (isGoneLocalOwner(intent.owner) || age > STALE_INTENT_MS)) runs.push(pipelineId);
  }
  return runs;
}
