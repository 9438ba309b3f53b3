/**
 * Loaded outputs decode on first read. An output whose hash verifies but whose text this cairn
 * cannot decode (a newer format's tag) is refused when read, with the stage named.
 */
import { describe, expect, it } from "vitest";
import { computeChecksum, type StoredMetadata, sha256 } from "../../src/core/record.js";
import { CheckpointManager } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

describe("lazily decoded outputs", () => {
  it("loads a checkpoint whose output has an unknown tag, and refuses that output when read", async () => {
    const store = new MemoryStore();
    const manager = new CheckpointManager({ store });
    const future = '{"$cairn":"vector","v":[1,2]}';
    const plain = '{"rows":3}';
    const body = JSON.stringify({
      state_data: {},
      completed_stages: ["a", "b"],
      pending_stages: [],
      provenance_hashes: {},
      output_refs: { a: sha256(plain), b: sha256(future) },
    });
    const metadata: StoredMetadata = {
      checkpoint_id: "run1_b_1",
      pipeline_id: "run1",
      pipeline_name: "demo",
      stage_name: "b",
      stage_index: 1,
      sequence: 1,
      timestamp: "2024-01-01T00:00:00.000Z",
      status: "completed",
      checksum: "",
      data_size: body.length,
      error_message: null,
      resume_count: 0,
      parent_checkpoint_id: null,
      parent_checksum: null,
      format_version: 1,
    };
    metadata.checksum = computeChecksum(metadata, body);
    await store.putCheckpoint({ metadata, body }, [
      { hash: sha256(plain), body: plain },
      { hash: sha256(future), body: future },
    ]);
    const loaded = await manager.loadLatestCheckpoint("run1");
    expect(loaded?.agentOutputs.a).toEqual({ rows: 3 });
    expect(() => loaded?.agentOutputs.b).toThrow(
      expect.objectContaining({
        code: "CAIRN_CORRUPT",
        checkpointId: "run1_b_1",
        message: expect.stringContaining("output of stage b does not decode"),
      }),
    );
    // Validation decodes everything, so it reports what a load only meets when the output is read.
    const result = await manager.validateCheckpoint("run1_b_1");
    expect(result.valid).toBe(false);
    expect(result.problems).toEqual([
      { kind: "unreadable", message: expect.stringContaining("output of stage b does not decode") },
    ]);
  });
});
