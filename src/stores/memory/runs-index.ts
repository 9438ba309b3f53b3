/**
 * The memory store's runs-by-name index: per pipeline name, every run and the unfinished runs,
 * each kept sorted newest first, so a page is a binary search plus a slice.
 */
import { InvalidArgumentError } from "../../core/errors.js";
import type { ListRunsQuery, RunEntry, RunPage } from "../types.js";

interface NameRuns {
  all: RunEntry[];
  unfinished: RunEntry[];
}

const DEFAULT_LIMIT = 100;

/** Newest first: `createdAt` descending, then `pipelineId` descending. */
function newestFirst(a: Pick<RunEntry, "createdAt" | "pipelineId">, b: typeof a): number {
  const byTime = Date.parse(b.createdAt) - Date.parse(a.createdAt);
  if (byTime !== 0) return byTime;
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.pipelineId === b.pipelineId ? 0 : a.pipelineId < b.pipelineId ? 1 : -1;
}

/** The first position whose entry sorts strictly after `key`. */
function after(list: readonly RunEntry[], key: Pick<RunEntry, "createdAt" | "pipelineId">): number {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (newestFirst(list[mid] as RunEntry, key) <= 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

function insert(list: RunEntry[], entry: RunEntry): void {
  list.splice(after(list, entry), 0, entry);
}

function remove(list: RunEntry[], entry: RunEntry): void {
  const at = after(list, entry) - 1;
  if (at >= 0 && list[at] === entry) list.splice(at, 1);
}

const encodeCursor = (entry: RunEntry) =>
  Buffer.from(JSON.stringify([entry.createdAt, entry.pipelineId])).toString("base64url");

function decodeCursor(cursor: string): Pick<RunEntry, "createdAt" | "pipelineId"> {
  try {
    const [createdAt, pipelineId] = JSON.parse(
      Buffer.from(cursor, "base64url").toString("utf8"),
    ) as unknown[];
    if (
      typeof createdAt === "string" &&
      typeof pipelineId === "string" &&
      !Number.isNaN(Date.parse(createdAt))
    )
      return { createdAt, pipelineId };
  } catch {
    // Reported below as the caller's mistake, with the cursor it passed.
  }
  throw new InvalidArgumentError(`listRuns cursor ${JSON.stringify(cursor)} is not one this store gave`);
}

/** Runs by pipeline name; entries are owned here and handed out as copies. */
export class RunsIndex {
  private readonly byName = new Map<string, NameRuns>();
  private readonly byRun = new Map<string, RunEntry>();

  /** Records a stored checkpoint: the run's first one creates its entry, `pipeline_complete` finishes it. */
  noteCheckpoint(pipelineId: string, pipelineName: string, timestamp: string, stage: string): void {
    const finished = stage === "pipeline_complete";
    const entry = this.byRun.get(pipelineId);
    if (!entry) {
      this.add({ pipelineId, pipelineName, createdAt: timestamp, finished });
    } else if (finished && !entry.finished) {
      const runs = this.byName.get(entry.pipelineName);
      if (runs) remove(runs.unfinished, entry);
      entry.finished = true;
    }
  }

  /** Replaces the run's entry (`undefined`: removes it). */
  set(pipelineId: string, entry: RunEntry | undefined): void {
    this.delete(pipelineId);
    if (entry) this.add({ ...entry });
  }

  get(pipelineId: string): RunEntry | undefined {
    const entry = this.byRun.get(pipelineId);
    return entry && { ...entry };
  }

  delete(pipelineId: string): void {
    const entry = this.byRun.get(pipelineId);
    if (!entry) return;
    this.byRun.delete(pipelineId);
    const runs = this.byName.get(entry.pipelineName);
    if (!runs) return;
    remove(runs.all, entry);
    remove(runs.unfinished, entry);
    if (runs.all.length === 0) this.byName.delete(entry.pipelineName);
  }

  list(query: ListRunsQuery): RunPage {
    const runs = this.byName.get(query.pipelineName);
    const list = (query.unfinished ? runs?.unfinished : runs?.all) ?? [];
    const start = query.cursor === undefined ? 0 : after(list, decodeCursor(query.cursor));
    const page = list.slice(start, start + (query.limit ?? DEFAULT_LIMIT)).map((e) => ({ ...e }));
    const last = page[page.length - 1];
    return last && start + page.length < list.length
      ? { runs: page, nextCursor: encodeCursor(last) }
      : { runs: page };
  }

  private add(entry: RunEntry): void {
    let runs = this.byName.get(entry.pipelineName);
    if (!runs) {
      runs = { all: [], unfinished: [] };
      this.byName.set(entry.pipelineName, runs);
    }
    this.byRun.set(entry.pipelineId, entry);
    insert(runs.all, entry);
    if (!entry.finished) insert(runs.unfinished, entry);
  }
}
