/** Short labels of LangGraph ids in the thread views: unique, whole uuid groups, marked when cut. */
import { describe, expect, it } from "vitest";
import { shortIds } from "../../src/debug/thread.js";

describe("shortIds", () => {
  it("skips the groups uuid6 ids of one thread share and keeps enough to tell them apart", () => {
    const ids = ["1f1f043a-9975-6ba0-ffff-582235befaba", "1f1f043a-9989-6420-8000-ae94e3c0cd67"];
    expect([...shortIds(ids).values()]).toEqual(["…9975-6ba0", "…9989-6420"]);
    // Ids alike further on: the label grows until they differ.
    const close = ["1f1f043a-99f9-6900-8002-6745d3647fe2", "1f1f043a-99f9-6900-8003-6745d3647fe2"];
    expect(new Set(shortIds(close).values()).size).toBe(2);
    expect(
      shortIds(["1f1f043a-99f9-6900-8002-6745d3647fe2"]).get("1f1f043a-99f9-6900-8002-6745d3647fe2"),
    ).toBe("…99f9-6900");
  });

  it("leaves short ids whole and marks a cut at the end of ids that share no group", () => {
    expect([...shortIds(["1", "2", "10"]).values()]).toEqual(["1", "2", "10"]);
    expect([...shortIds(["checkpoint one", "checkpoint two"]).values()]).toEqual([
      "checkpoint on…",
      "checkpoint tw…",
    ]);
    expect(shortIds([]).size).toBe(0);
  });
});
