/**
 * A run's manifest: which checkpoints and outputs it holds. The tip keeps the newest entries
 * inline (`recent`); when `recent` outgrows {@link RECENT_CPS} checkpoints or {@link RECENT_OUTS}
 * outputs the writer first writes it as an immutable page (create-only, fresh suffix) and commits
 * a tip that references the page with an empty `recent`, so the tip stays a few KB at any run
 * length and neither resume nor a write ever reads a page. Maintenance that changes old entries
 * reads every page, writes new pages, commits the tip, then deletes the replaced pages.
 */
import { CheckpointCorruptError } from "../../core/errors.js";
import { newSuffix, pageKey } from "./keys.js";
import type { ObjectClient } from "./objects.js";
import type { CpEntry, PageRef, Tip } from "./tip.js";

/** Checkpoint entries the tip holds inline before they spill to a page. */
export const RECENT_CPS = 256;
/** Output hashes the tip holds inline before they spill to a page. */
export const RECENT_OUTS = 1024;

/** A run's whole manifest. */
export interface Manifest {
  cps: CpEntry[];
  outs: string[];
}

/** The body of a page object. */
interface PageBody {
  cps: CpEntry[];
  outs: string[];
}

/** Runs `fn` over `items` with at most `limit` in flight, results in order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Reads one page; `CheckpointCorruptError` when it is missing or unparseable. */
export async function readPage(client: ObjectClient, ref: PageRef): Promise<PageBody> {
  const got = await client.get(ref.key);
  if (!got) throw new CheckpointCorruptError(undefined, `manifest page ${ref.key} is missing`);
  try {
    const page = JSON.parse(got.body.toString("utf8")) as PageBody;
    if (Array.isArray(page.cps) && Array.isArray(page.outs)) return page;
  } catch {
    // Reported below, with the key.
  }
  throw new CheckpointCorruptError(undefined, `manifest page ${ref.key} does not parse`);
}

/** The tip's whole manifest: `recent` and every page (read in parallel). */
export async function loadManifest(client: ObjectClient, tip: Tip): Promise<Manifest> {
  const pages = await mapLimit(tip.pages, 32, (ref) => readPage(client, ref));
  const cps: CpEntry[] = [];
  const outs = new Set<string>();
  for (const page of pages) {
    cps.push(...page.cps);
    for (const h of page.outs) outs.add(h);
  }
  cps.push(...tip.recent.cps);
  for (const h of tip.recent.outs) outs.add(h);
  return { cps, outs: [...outs] };
}

/** Writes entries as a new page (create-only, fresh key) and returns its reference. */
export async function writePage(
  client: ObjectClient,
  runId: string,
  cps: CpEntry[],
  outs: string[],
): Promise<PageRef> {
  for (let attempt = 0; ; attempt++) {
    const key = pageKey(runId, newSuffix());
    const written = await client.put(key, JSON.stringify({ cps, outs }), { ifNoneMatch: "*" });
    const seqs = cps.map((c) => c[0]);
    if (written.ok) {
      return {
        key,
        cps: cps.length,
        outs: outs.length,
        minSeq: seqs.length > 0 ? Math.min(...seqs) : 0,
        maxSeq: seqs.length > 0 ? Math.max(...seqs) : 0,
      };
    }
    // A suffix collision (36^8 keys): draw another.
    if (attempt > 5) throw new CheckpointCorruptError(undefined, `cannot write a new page for ${runId}`);
  }
}

/** True when `recent` must spill to a page before the tip is committed. */
export const mustSpill = (recent: Tip["recent"]): boolean =>
  recent.cps.length > RECENT_CPS || recent.outs.length > RECENT_OUTS;

/**
 * The `recent` and `pages` of a tip holding exactly `manifest`: inline when it fits, otherwise
 * written as new pages of at most {@link RECENT_CPS} / {@link RECENT_OUTS} entries each.
 */
export async function layOut(
  client: ObjectClient,
  runId: string,
  manifest: Manifest,
): Promise<Pick<Tip, "recent" | "pages">> {
  if (!mustSpill(manifest)) return { recent: { cps: manifest.cps, outs: manifest.outs }, pages: [] };
  const chunks = Math.max(
    Math.ceil(manifest.cps.length / RECENT_CPS),
    Math.ceil(manifest.outs.length / RECENT_OUTS),
  );
  const pages = await mapLimit(Array.from({ length: chunks }), 8, (_, i) =>
    writePage(
      client,
      runId,
      manifest.cps.slice(i * RECENT_CPS, (i + 1) * RECENT_CPS),
      manifest.outs.slice(i * RECENT_OUTS, (i + 1) * RECENT_OUTS),
    ),
  );
  return { recent: { cps: [], outs: [] }, pages };
}

/** Finds an id's entry: in `recent`, else in the pages whose sequence range holds `seq`. */
export async function findEntry(
  client: ObjectClient,
  tip: Tip,
  checkpointId: string,
  seq: number | undefined,
): Promise<CpEntry | undefined> {
  const inline = tip.recent.cps.find((c) => c[1] === checkpointId);
  if (inline) return inline;
  const refs = tip.pages.filter((p) => seq === undefined || (p.minSeq <= seq && seq <= p.maxSeq));
  const pages = await mapLimit(refs, 32, (ref) => readPage(client, ref));
  for (const page of pages) {
    const found = page.cps.find((c) => c[1] === checkpointId);
    if (found) return found;
  }
  return undefined;
}
