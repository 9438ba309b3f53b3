/** The comparison of a run's listing with its head record, case by case. */
import { describe, expect, it } from "vitest";
import { historyFindings } from "../../src/manager/history.js";
import type { ListedCheckpoint, RunHead, StoredMetadata } from "../../src/stores/types.js";

const listed = (sequence: number, checksum = `sum${sequence}`, id = `c${sequence}`): ListedCheckpoint => ({
  ok: true,
  metadata: { checkpoint_id: id, sequence, checksum } as StoredMetadata,
});
const head = (sequence: number, extra: Partial<RunHead> = {}): RunHead => ({
  sequence,
  checkpointId: `c${sequence}`,
  checksum: `sum${sequence}`,
  ...extra,
});
const kinds = (listing: ListedCheckpoint[], h: RunHead | undefined) =>
  historyFindings(listing, h).map((f) => [f.kind, f.problem]);

describe("historyFindings", () => {
  it("finds nothing when the head's checkpoint is listed as written", () => {
    expect(kinds([listed(1), listed(2)], head(2))).toEqual([]);
  });

  it("tells a truncated tail, a lost run and a replaced tip apart", () => {
    const cut = historyFindings([listed(1), listed(2)], head(4));
    expect(cut).toMatchObject([
      { kind: "truncated", problem: true, missing: { fromSequence: 3, toSequence: 4 } },
    ]);
    expect(cut[0]?.message).toContain("the newest 2 checkpoints (sequences 3..4, the last c4) are missing");
    expect(kinds([], head(4))).toEqual([["history_lost", true]]);
    // The head's checkpoint is there with another checksum: rewritten or rolled back.
    expect(kinds([listed(1), listed(2, "other")], head(2))).toEqual([["replaced", true]]);
    // The head's checkpoint is gone while another chain holds its sequence.
    expect(kinds([listed(1), listed(2, "sum2", "x2")], head(2))).toEqual([["replaced", true]]);
  });

  it("reports retention's removals as information, and a loss beyond them still as a loss", () => {
    const pruned = { throughSequence: 3, at: "2024-01-01T00:00:00.000Z" };
    expect(historyFindings([listed(4), listed(5)], head(5, { pruned }))).toEqual([
      expect.objectContaining({
        kind: "pruned",
        problem: false,
        message: "sequences 1..3 removed by retention (last on 2024-01-01T00:00:00.000Z)",
      }),
    ]);
    expect(historyFindings([listed(4)], head(6, { pruned }))[1]).toMatchObject({
      kind: "truncated",
      missing: { fromSequence: 5, toSequence: 6 },
    });
    expect(historyFindings([], head(6, { pruned }))[1]).toMatchObject({
      kind: "history_lost",
      missing: { fromSequence: 4, toSequence: 6 },
    });
  });

  it("cannot judge a run without a head record, and says so as information", () => {
    expect(kinds([listed(1)], undefined)).toEqual([["head_missing", false]]);
    expect(kinds([], undefined)).toEqual([]);
  });
});
