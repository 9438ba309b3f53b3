/** The file store's `setup()`: the base folder checked, then a writer's recovery of what a crash left. */
import { stat } from "node:fs/promises";
import { InvalidConfigError, StoreNotFoundError, StoreUnavailableError } from "../../core/errors.js";
import { hasCode } from "../../util/fs-util.js";
import type { FileFeed } from "./file-feed.js";
import type { StoreLayout } from "./layout.js";
import type { RunsIndex } from "./runs-index.js";
import { recoverLeftovers } from "./staging.js";

/** The parts of a file store its setup reads and repairs. */
export interface SetupTarget {
  readonly basePath: string;
  readonly location: string;
  readonly fsync: boolean;
  readonly readOnly: boolean;
  readonly layout: StoreLayout;
  readonly runs: RunsIndex;
  readonly feed: FileFeed;
}

/** Checks the base folder and, for a store an older cairn wrote, builds the runs index once. */
export async function setupFileStore(s: SetupTarget): Promise<void> {
  // Nothing is created until the first write: a read-only command on a mistyped path must
  // not leave an empty store behind. A path that is not a folder is reported at once.
  try {
    if (!(await stat(s.basePath)).isDirectory()) {
      throw new StoreUnavailableError("file", `${s.basePath} is not a folder`);
    }
  } catch (error) {
    if (!hasCode(error, "ENOENT")) throw error;
    if (s.readOnly) throw new StoreNotFoundError(s.location, "the folder does not exist");
  }
  // Before anything else is read: a newer cairn's arrangement is refused, not misread.
  s.layout.check();
  // A reader leaves a killed writer's leftovers to the next writer, and builds no index.
  if (s.readOnly) {
    if (!(await s.runs.built())) {
      throw new InvalidConfigError(
        `the store at ${s.location} has no runs-by-name index yet (written by an older cairn): run \`cairn migrate\` on it first`,
      );
    }
    return;
  }
  await recoverLeftovers(s.basePath, s.runs, s.fsync);
  await s.runs.setup();
  // After the leftovers: an import they finish is in place, and its changes are settled as committed.
  await s.feed.recoverAbandoned();
}
