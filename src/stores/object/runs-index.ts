/**
 * `listRuns` from the runs-by-name entries (`index/<hex(name)>/<inv(createdAt)>~<inv(runId)>~`):
 * an ascending listing is newest first, exactly `listRuns`' order, so a page is one LIST from
 * the cursor's key plus the entries' tips read in parallel. An entry is a hint written before the
 * tip commit of a run's first checkpoint: it counts only when its run's tip is live and has that
 * name and createdAt (a crashed first write, a deleted run or a stale entry is skipped).
 * `unfinished` filters by the tips, so a name with many finished runs reads more tips per page.
 */
import { DEFAULT_RUNS_LIMIT, decodeRunCursor, encodeRunCursor } from "../run-cursor.js";
import type { ListRunsQuery, RunEntry, RunPage } from "../types.js";
import type { ObjectContext } from "./context.js";
import { indexKey, indexPrefix } from "./keys.js";
import { mapLimit } from "./manifest.js";
import { liveTip } from "./tip.js";

/** The run an entry's key names, read from its body. */
async function entryOf(
  ctx: ObjectContext,
  key: string,
): Promise<{ run: string; name: string; createdAt: string } | undefined> {
  const got = await ctx.client.get(key);
  if (!got) return undefined;
  try {
    const body = JSON.parse(got.body.toString("utf8")) as {
      run?: unknown;
      name?: unknown;
      createdAt?: unknown;
    };
    if (typeof body.run === "string" && typeof body.name === "string" && typeof body.createdAt === "string") {
      return { run: body.run, name: body.name, createdAt: body.createdAt };
    }
  } catch {
    // An unreadable hint is skipped: the tips are the truth.
  }
  return undefined;
}

/**
 * One page of a name's runs. The run id is decoded from the key itself (inverted hex), so only
 * the tips are read, not the entries' bodies.
 */
export async function listRuns(ctx: ObjectContext, query: ListRunsQuery): Promise<RunPage> {
  const limit = query.limit ?? DEFAULT_RUNS_LIMIT;
  const prefix = indexPrefix(query.pipelineName);
  let startAfter: string | undefined;
  if (query.cursor !== undefined) {
    const [createdAt, runId] = decodeRunCursor(query.cursor);
    startAfter = indexKey(query.pipelineName, createdAt, runId);
  }
  const runs: RunEntry[] = [];
  let continuation: string | undefined;
  for (;;) {
    const page = await ctx.client.list(prefix, {
      ...(continuation === undefined ? (startAfter === undefined ? {} : { startAfter }) : { continuation }),
      maxKeys: Math.min(1000, limit + 1),
    });
    const found = await mapLimit(page.keys, 32, async (key) => {
      const decoded = decodeKey(key.slice(prefix.length));
      const entry = decoded ?? (await entryOf(ctx, key));
      if (!entry) return undefined;
      const tip = liveTip((await ctx.tips.read(entry.run)).tip);
      if (!tip || tip.name !== query.pipelineName || tip.createdAt !== entry.createdAt) return undefined;
      if (query.unfinished && tip.finished) return undefined;
      return {
        pipelineId: entry.run,
        pipelineName: query.pipelineName,
        createdAt: entry.createdAt,
        finished: tip.finished,
      };
    });
    for (const run of found) {
      if (!run) continue;
      if (runs.length === limit)
        return { runs, nextCursor: encodeRunCursor(runs[runs.length - 1] as RunEntry) };
      runs.push(run);
    }
    continuation = page.continuation;
    if (continuation === undefined) return { runs };
  }
}

/** Inverse of `inv`: the text whose inverted hex this is; undefined when malformed. */
function uninv(hexText: string): string | undefined {
  if (!/^(?:[0-9a-f]{2})*$/.test(hexText)) return undefined;
  const bytes = Buffer.alloc(hexText.length / 2);
  for (let i = 0; i < bytes.length; i++)
    bytes[i] = 255 - Number.parseInt(hexText.slice(i * 2, i * 2 + 2), 16);
  return bytes.toString("utf8");
}

/** The createdAt and run id of an entry's key tail (`<inv(createdAt)>~<inv(runId)>~`). */
function decodeKey(tail: string): { run: string; createdAt: string } | undefined {
  const match = /^([0-9a-f]*)~([0-9a-f]*)~$/.exec(tail);
  if (!match) return undefined;
  const createdAt = uninv(match[1] as string);
  const run = uninv(match[2] as string);
  return createdAt === undefined || run === undefined ? undefined : { run, createdAt };
}
