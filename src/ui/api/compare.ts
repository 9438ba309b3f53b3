/**
 * The compare page: two checkpoints side by side with a structural diff of their state and of
 * their outputs. Both sides are loaded by `cairn compare`'s code (verified, or as far as they
 * read); outputs are compared by hash, and those that differ are diffed value by value when
 * both are small enough to read whole (a large one is reported changed with its sizes).
 */
import { decode, encode } from "../../core/codec.js";
import { assertValidName } from "../../core/ids.js";
import {
  type CompareSide,
  compareOutputs,
  compareStages,
  diffTrees,
  type Loaded,
  loadSide,
  type TreeChange,
} from "../../debug/compare.js";
import { type ApiContext, INLINE_LIMIT, previewJson } from "./context.js";

/** One difference; `before`/`after` are previews of at most 200 characters of JSON. */
export interface Diff {
  path: (string | number)[];
  kind: "added" | "removed" | "changed";
  before?: unknown;
  after?: unknown;
}

/** What the compare page shows. */
export interface Comparison {
  a: CompareSide;
  b: CompareSide;
  state: Diff[];
  /** The state diff stopped at its limit (200 differences). */
  stateTruncated: boolean;
  /** Output differences, each path starting with the stage name. */
  outputs: Diff[];
  stages: { added: string[]; removed: string[] };
  /** What could not be compared, and why. */
  notes: string[];
}

const render = (value: unknown): string => {
  try {
    return encode(value);
  } catch {
    return String(value);
  }
};

function toDiff(change: TreeChange, prefix: (string | number)[] = []): Diff {
  return {
    path: [...prefix, ...change.path],
    kind: change.change,
    ...(change.change !== "added" ? { before: previewJson(change.a, render) } : {}),
    ...(change.change !== "removed" ? { after: previewJson(change.b, render) } : {}),
  };
}

/** Compares checkpoint `a` with `b`; `CAIRN_NOT_FOUND` when either is absent, never throws for a corrupt one. */
export async function compareCheckpoints(ctx: ApiContext, a: string, b: string): Promise<Comparison> {
  assertValidName("a", a);
  assertValidName("b", b);
  const store = await ctx.manager.getStore();
  const left = await loadSide(store, a);
  const right = await loadSide(store, b);
  const notes: string[] = [];
  for (const [name, side] of [
    ["A", left],
    ["B", right],
  ] as const) {
    if (!side.side.verified) notes.push(`${name} failed verification: compared as far as it can be read`);
    if (!side.state) notes.push(`${name}: the state cannot be read; state not compared`);
  }
  const state =
    left.state && right.state ? diffTrees(left.state, right.state) : { changes: [], truncated: false };
  const stages =
    left.body && right.body ? compareStages(left.body, right.body) : { onlyInA: [], onlyInB: [] };
  return {
    a: left.side,
    b: right.side,
    state: state.changes.map((c) => toDiff(c)),
    stateTruncated: state.truncated,
    outputs: outputDiffs(left, right, notes),
    stages: { added: stages.onlyInB, removed: stages.onlyInA },
    notes,
  };
}

/** Output differences: by hash, then value by value where both sides are verified and small. */
function outputDiffs(left: Loaded, right: Loaded, notes: string[]): Diff[] {
  if (!left.body || !right.body) return [];
  const diffs: Diff[] = [];
  for (const o of compareOutputs(left.body, right.body)) {
    if (o.change === "same") continue;
    if (o.change === "added" || o.change === "removed") {
      diffs.push({
        path: [o.stage],
        kind: o.change,
        ...(o.change === "removed" ? { before: { hash: o.hashA } } : { after: { hash: o.hashB } }),
      });
      continue;
    }
    const ta = o.hashA === undefined ? undefined : left.outputs?.get(o.hashA);
    const tb = o.hashB === undefined ? undefined : right.outputs?.get(o.hashB);
    if (ta === undefined || tb === undefined || ta.length > INLINE_LIMIT || tb.length > INLINE_LIMIT) {
      // Too large (or not verified) to diff here: the page opens each side's output instead.
      diffs.push({
        path: [o.stage],
        kind: "changed",
        before: { hash: o.hashA, size: ta?.length ?? null },
        after: { hash: o.hashB, size: tb?.length ?? null },
      });
      continue;
    }
    const { changes, truncated } = diffTrees(decode(ta), decode(tb));
    if (truncated) notes.push(`output ${o.stage}: only the first differences are listed`);
    for (const c of changes) diffs.push(toDiff(c, [o.stage]));
  }
  return diffs;
}
