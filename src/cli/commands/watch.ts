/**
 * `cairn watch`: prints a store's changes as they happen, one line each: readable text, or with
 * `--json` one JSON object per line with its cursor, so a script restarts with `--since` after
 * the last line it handled. SIGINT/SIGTERM stop it cleanly (exit 0). A store that goes away is
 * reported on stderr and watched again from the last change printed once it is back.
 */
import type { Command } from "commander";
import { changeRecord } from "../../feed/watch.js";
import {
  type ChangeEvent,
  type CheckpointManager,
  ErrorCode,
  isCairnError,
  type WatchOptions,
} from "../../index.js";
import { sleepUnlessAborted } from "../../util/sleep.js";
import { outputClosed } from "../closed-output.js";
import { UsageError } from "../exit-codes.js";
import { formatTime, printText } from "../output.js";
import { examples } from "../runs.js";
import { stopOnSignals } from "../stop-signals.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";

interface WatchFlags extends StoreFlags {
  pipelineId?: string;
  name?: string;
  since?: string;
  fromStart?: boolean;
}

/** Longest pause between attempts while the store is unreachable. */
const MAX_RETRY_MS = 30_000;

/** One change as a JSON line: every key present (null when absent), the cursor last. */
export function changeJson(change: ChangeEvent): string {
  return JSON.stringify(changeRecord(change));
}

/** One change as a readable line: time, type, run, checkpoint and its sequence. */
export function changeLine(change: ChangeEvent): string {
  const what =
    change.checkpointId === undefined
      ? "(the whole run)"
      : `${change.checkpointId}${change.sequence !== undefined ? ` #${change.sequence}` : ""}`;
  return `${formatTime(new Date(change.at))}  ${change.type.padEnd(10)}  ${change.pipelineId}  ${what}`;
}

/**
 * Prints changes until `stop` aborts; returns the cursor of the last change printed. From now
 * means from the feed's cursor taken once at the start, so a reconnection misses nothing.
 */
async function follow(
  manager: CheckpointManager,
  flags: WatchFlags,
  stop: AbortSignal,
): Promise<string | undefined> {
  const print = flags.json ? changeJson : changeLine;
  let since = flags.since;
  let fromStart = flags.fromStart === true;
  let last: string | undefined;
  let failures = 0;
  while (!stop.aborted) {
    try {
      if (since === undefined && !fromStart) {
        const store = await manager.getStore();
        // A store without a feed has no cursor: the watch below says so with its typed error.
        if (store.feedCursor) since = await store.feedCursor();
      }
      const options: WatchOptions = { signal: stop, ...(since !== undefined ? { since } : { fromStart }) };
      if (flags.pipelineId !== undefined) options.pipelineId = flags.pipelineId;
      if (flags.name !== undefined) options.name = flags.name;
      for await (const change of manager.watch(options)) {
        printText(print(change));
        last = since = change.cursor;
        fromStart = false;
        failures = 0;
      }
    } catch (error) {
      if (!isCairnError(error, ErrorCode.StoreUnavailable)) throw error;
      failures++;
      const delay = Math.min(MAX_RETRY_MS, 500 * 2 ** Math.min(failures, 6));
      process.stderr.write(
        `cairn: ${new Date().toISOString()}: ${error.message} (${error.code}); retrying in ${Math.round(delay / 1000)}s\n`,
      );
      await sleepUnlessAborted(delay, stop);
    }
  }
  return last;
}

/** Watches until SIGINT/SIGTERM (or until nobody reads stdout); a second signal exits at once. */
async function watchUntilStopped(manager: CheckpointManager, flags: WatchFlags): Promise<void> {
  const stop = new AbortController();
  const undo = stopOnSignals(stop, { whenOutputCloses: true });
  try {
    const last = await follow(manager, flags, stop.signal);
    // The readable lines carry no cursor: say where to continue from.
    if (!flags.json && last !== undefined && !outputClosed.aborted)
      process.stderr.write(`cairn: stopped; continue after the last change with --since ${last}\n`);
  } finally {
    undo();
  }
}

/** Registers `cairn watch`. */
export function registerWatch(program: Command): void {
  const command = program
    .command("watch")
    .summary("Print a store's changes as they happen")
    .description(
      "Prints each change of the store as it happens (checkpoint written, status changed, deleted): " +
        "time, type, run, checkpoint and sequence, or with --json one JSON object per line with its " +
        "cursor; --since <cursor> continues after a change printed before, even hours later, within " +
        "the store's feed retention. Runs until Ctrl+C (exit 0)",
    )
    .option("--pipeline-id <id>", "only changes of this run")
    .option("--name <pipeline>", "only changes of runs of this pipeline")
    .option("--since <cursor>", "start after this change (the cursor of a line printed with --json)")
    .option("--from-start", "without --since: start at the oldest change the store retains, not now")
    .addHelpText(
      "after",
      examples(
        "cairn watch --store sqlite:./cairn.db",
        "cairn watch --pipeline-id etl_20240101T000000000Z_abc234 --json",
        'cairn watch --json --since "$(tail -1 changes.jsonl | jq -r .cursor)" >> changes.jsonl',
      ),
    );
  addStoreOptions(command);
  const json = command.options.find((option) => option.long === "--json");
  if (json) json.description = "print each change as one JSON line, with its cursor";
  command.action(async (flags: WatchFlags) => {
    if (flags.since !== undefined && flags.since.trim() === "")
      throw new UsageError("--since takes the cursor of a change printed with --json");
    await withReader(flags, (manager) => watchUntilStopped(manager, flags));
  });
}
