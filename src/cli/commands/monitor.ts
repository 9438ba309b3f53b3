/**
 * `cairn monitor`: a live view of the runs in a store. On a terminal it redraws in place every
 * `--refresh` seconds, and sooner when the store's change feed reports a change; otherwise it
 * prints one timestamped block per refresh. SIGINT/SIGTERM stop it cleanly (cursor restored,
 * store closed, exit 0); `--once` prints one snapshot.
 */
import { type Command, InvalidArgumentError as CommanderArgumentError } from "commander";
import { type CheckpointManager, ErrorCode, isCairnError } from "../../index.js";
import { sleepUnlessAborted } from "../../util/sleep.js";
import { UsageError } from "../exit-codes.js";
import { ansiFrame, type MonitorSnapshot, renderSnapshot, takeSnapshot } from "../monitor-view.js";
import { printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { stopOnSignals } from "../stop-signals.js";
import { addStoreOptions, type StoreFlags, withReader } from "../store-options.js";

interface MonitorFlags extends StoreFlags {
  refresh: number;
  pipelineId?: string;
  name?: string;
  once?: boolean;
}

/** What to watch, from the flags. */
const scope = (flags: MonitorFlags) => ({
  ...(flags.pipelineId !== undefined ? { pipelineId: flags.pipelineId } : {}),
  ...(flags.name !== undefined ? { pipelineName: flags.name } : {}),
});

const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";

function parseRefresh(value: string): number {
  const seconds = Number(value);
  if (value.trim() === "" || !Number.isFinite(seconds) || seconds < 0.1) {
    throw new CommanderArgumentError("expected a number of seconds, at least 0.1");
  }
  return seconds;
}

/** Shortest time between two refreshes woken by changes: a busy store is not re-read for each write. */
const MIN_WAKE_MS = 250;

/**
 * The feed's cursor before a refresh, so a change made while it reads wakes the next wait;
 * undefined for a store without a feed (or without one yet), or one that cannot be reached (the
 * refresh reports that).
 */
async function feedCursor(manager: CheckpointManager): Promise<string | undefined> {
  try {
    const store = await manager.getStore();
    return store.readChanges && store.waitForChanges && store.feedCursor
      ? await store.feedCursor()
      : undefined;
  } catch (error) {
    if (isCairnError(error, ErrorCode.StoreUnavailable)) return undefined;
    // A store an older cairn wrote, opened read-only, has no feed until `cairn migrate` (or a
    // writable open) adds it: the view is polled, as it always was there.
    if (isCairnError(error, ErrorCode.InvalidConfig) || isCairnError(error, ErrorCode.StoreUnsupported))
      return undefined;
    throw error;
  }
}

/**
 * Waits for the next refresh: `ms`, or less when the feed reports a change after `cursor` (then
 * at least {@link MIN_WAKE_MS}, or `ms` if shorter). Lease changes are not in the feed (a runner that stops makes its
 * run paused without a change), so the interval still applies.
 */
async function nextRefresh(
  manager: CheckpointManager,
  cursor: string | undefined,
  ms: number,
  signal: AbortSignal,
): Promise<void> {
  const store = cursor === undefined ? undefined : await manager.getStore();
  if (cursor === undefined || !store?.waitForChanges) return sleepUnlessAborted(ms, signal);
  const begun = Date.now();
  try {
    await store.waitForChanges(cursor, ms, signal);
  } catch (error) {
    // A trimmed cursor means many changes: refresh. An unreachable store: the refresh reports it.
    if (!isCairnError(error, ErrorCode.FeedTrimmed) && !isCairnError(error, ErrorCode.StoreUnavailable))
      throw error;
  }
  await sleepUnlessAborted(Math.min(ms, MIN_WAKE_MS) - (Date.now() - begun), signal);
}

/** One refresh; an unreachable store is shown (and retried next time) rather than ending the view. */
async function refresh(
  manager: CheckpointManager,
  flags: MonitorFlags,
  last: MonitorSnapshot | undefined,
): Promise<{ snapshot: MonitorSnapshot | undefined; lines: string[] }> {
  try {
    const snapshot = await takeSnapshot(manager, scope(flags));
    const lines = renderSnapshot(snapshot);
    if (flags.pipelineId !== undefined && snapshot.runs.length === 0) {
      lines.push(`No run ${flags.pipelineId} in the store (yet).`);
    }
    return { snapshot, lines };
  } catch (error) {
    if (!isCairnError(error, ErrorCode.StoreUnavailable)) throw error;
    const note = `${new Date().toISOString()}: ${error.message} (retrying)`;
    return { snapshot: last, lines: last ? renderSnapshot(last, "(stale)").concat("", note) : [note] };
  }
}

/** Redraws until SIGINT/SIGTERM; resolves once stopped, with the terminal restored. */
async function watch(manager: CheckpointManager, flags: MonitorFlags): Promise<void> {
  const out = process.stdout;
  const tty = out.isTTY === true;
  const stop = new AbortController();
  const restore = () => {
    if (tty) out.write(SHOW_CURSOR);
  };
  // Nobody reads any more (`cairn monitor | head`): watching on would only burn the store.
  const undo = stopOnSignals(stop, { whenOutputCloses: true, beforeExit: restore });
  if (tty) out.write(`${HIDE_CURSOR}\x1b[2J`);
  try {
    let last: MonitorSnapshot | undefined;
    while (!stop.signal.aborted) {
      const cursor = await feedCursor(manager);
      const { snapshot, lines } = await refresh(manager, flags, last);
      last = snapshot;
      if (stop.signal.aborted) break;
      if (tty) {
        const footer = `every ${flags.refresh}s — Ctrl+C to stop`;
        out.write(ansiFrame([...lines, "", footer], out.columns || 80, out.rows || 24));
      } else {
        printText(`--- ${new Date().toISOString()} ---\n${lines.join("\n")}\n`);
      }
      await nextRefresh(manager, cursor, flags.refresh * 1000, stop.signal);
    }
  } finally {
    undo();
    restore();
  }
}

/** Registers `cairn monitor`. */
export function registerMonitor(program: Command): void {
  const command = program
    .command("monitor")
    .summary("Watch runs live")
    .description(
      "A live view of the runs in a store (status, stages, checkpoints, latest stage) and the latest " +
        "checkpoint of each unfinished run, refreshed every --refresh seconds until Ctrl+C",
    )
    .option("--refresh <seconds>", "seconds between refreshes", parseRefresh, 2)
    .option("--pipeline-id <id>", "watch only this run")
    .option("--name <pipeline>", "watch only this pipeline's newest 50 runs (from the runs-by-name index)")
    .option("--once", "print one snapshot and exit (with --json: as JSON)")
    .addHelpText(
      "after",
      examples(
        "cairn monitor --store sqlite:./cairn.db",
        "cairn monitor --refresh 5 --pipeline-id etl_20240101T000000000Z_abc234",
        "cairn monitor --name etl --once --json",
      ),
    );
  addStoreOptions(command).action(async (flags: MonitorFlags) => {
    if (flags.json && !flags.once) throw new UsageError("--json needs --once: a live view is not a document");
    if (flags.name !== undefined && flags.pipelineId !== undefined)
      throw new UsageError("--name and --pipeline-id pick what to watch: give one of them");
    await withReader(flags, async (manager) => {
      if (!flags.once) return watch(manager, flags);
      const snapshot = await takeSnapshot(manager, { ...scope(flags), requireRun: true });
      if (flags.json) printJson(snapshot);
      else printText(renderSnapshot(snapshot).join("\n"));
    });
  });
}
