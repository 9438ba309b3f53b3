import { describe, expect, it } from "vitest";
import { canonicalJson, decodeTree, encode } from "../../src/core/codec.js";
import { CairnError, CheckpointCorruptError, ErrorCode, FormatTooNewError } from "../../src/core/errors.js";
import { FORMAT_V1 } from "../../src/core/formats.js";
import {
  applyPatch,
  assertSupportedFormat,
  compareStored,
  computeChecksum,
  metadataProblems,
  parseStoredMetadata,
  type StoredMetadata,
  sha256,
  toMetadata,
} from "../../src/core/record.js";
import { CHECKPOINT_STATUSES, FORMAT_VERSION } from "../../src/core/types.js";

/** Format 1's body rules (format 2 adds fields: see formats.test.ts). */
const parseBody = (id: string, text: string) => FORMAT_V1.parseBody(id, text);

const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;

function makeMetadata(overrides: Partial<StoredMetadata> = {}): StoredMetadata {
  return {
    checkpoint_id: "etl_run1_load_20240101T120000123Z_abcdefgh",
    pipeline_id: "etl_run1",
    pipeline_name: "etl",
    stage_name: "load",
    stage_index: 2,
    sequence: 3,
    timestamp: "2024-01-01T12:00:00.123Z",
    status: "in_progress",
    checksum: HASH_A,
    data_size: 1234,
    error_message: null,
    resume_count: 0,
    parent_checkpoint_id: "etl_run1_transform_20240101T115959000Z_hgfedcba",
    parent_checksum: HASH_B,
    format_version: 1,
    ...overrides,
  };
}

function makeBody(stateData: unknown = { input: "s3://bucket/key", rows: 10n, at: new Date(0) }): string {
  return encode({
    state_data: stateData,
    completed_stages: ["extract", "transform"],
    pending_stages: ["load", "report"],
    provenance_hashes: { extract: HASH_A, transform: HASH_B },
    output_refs: { extract: HASH_B, transform: HASH_A },
  });
}

const BODY = makeBody();

/** Runs `fn`, expects a CheckpointCorruptError and returns it. */
function corrupt(fn: () => unknown): CheckpointCorruptError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointCorruptError);
    expect(error).toBeInstanceOf(CairnError);
    const e = error as CheckpointCorruptError;
    expect(e.code).toBe("CAIRN_CORRUPT");
    expect(e.code).toBe(ErrorCode.Corrupt);
    for (const problem of e.problems) expect(e.message).toContain(problem);
    return e;
  }
  throw new Error("expected a CheckpointCorruptError, but nothing was thrown");
}

describe("sha256", () => {
  it("hashes UTF-8 text and bytes to lowercase hex", () => {
    expect(sha256("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(sha256("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(sha256(new Uint8Array([0x61, 0x62, 0x63]))).toBe(sha256("abc"));
    expect(sha256("é")).toBe(sha256(Buffer.from("é", "utf8")));
  });
});

describe("computeChecksum", () => {
  it("is a 64-character lowercase hex string", () => {
    expect(computeChecksum(makeMetadata(), BODY)).toMatch(HEX64);
  });

  it("is deterministic", () => {
    const first = computeChecksum(makeMetadata(), BODY);
    expect(computeChecksum(makeMetadata(), BODY)).toBe(first);
    expect(computeChecksum(makeMetadata(), makeBody())).toBe(first);
    expect(computeChecksum(structuredClone(makeMetadata()), `${BODY}`)).toBe(first);
  });

  it("follows the documented formula: SHA-256(canonical(immutable fields) + '\\n' + body)", () => {
    const m = makeMetadata();
    const header = {
      checkpoint_id: m.checkpoint_id,
      pipeline_id: m.pipeline_id,
      pipeline_name: m.pipeline_name,
      stage_name: m.stage_name,
      stage_index: m.stage_index,
      sequence: m.sequence,
      timestamp: m.timestamp,
      data_size: m.data_size,
      parent_checkpoint_id: m.parent_checkpoint_id,
      parent_checksum: m.parent_checksum,
      format_version: m.format_version,
    };
    expect(computeChecksum(m, BODY)).toBe(sha256(`${canonicalJson(header)}\n${BODY}`));
  });

  const immutableChanges: [string, Partial<StoredMetadata>][] = [
    ["checkpoint_id", { checkpoint_id: "etl_run1_load_20240101T120000123Z_zzzzzzzz" }],
    ["pipeline_id", { pipeline_id: "etl_run2" }],
    ["pipeline_name", { pipeline_name: "etl2" }],
    ["stage_name", { stage_name: "loads" }],
    ["stage_index", { stage_index: 3 }],
    ["stage_index to 0", { stage_index: 0 }],
    ["sequence", { sequence: 4 }],
    ["timestamp", { timestamp: "2024-01-01T12:00:00.124Z" }],
    ["data_size", { data_size: 1235 }],
    ["parent_checkpoint_id", { parent_checkpoint_id: "etl_run1_other" }],
    ["parent_checkpoint_id to null", { parent_checkpoint_id: null }],
    ["parent_checksum", { parent_checksum: "c".repeat(64) }],
    ["parent_checksum to null", { parent_checksum: null }],
    ["format_version", { format_version: 2 }],
  ];

  it.each(immutableChanges)("changes when %s changes", (_label, change) => {
    const base = computeChecksum(makeMetadata(), BODY);
    expect(computeChecksum(makeMetadata(change), BODY)).not.toBe(base);
  });

  it("changes when the body changes, even by one character", () => {
    const base = computeChecksum(makeMetadata(), BODY);
    expect(computeChecksum(makeMetadata(), makeBody({ input: "s3://bucket/kez" }))).not.toBe(base);
    expect(computeChecksum(makeMetadata(), `${BODY} `)).not.toBe(base);
    expect(computeChecksum(makeMetadata(), "")).not.toBe(base);
  });

  it("gives every single-field change a different checksum", () => {
    const sums = immutableChanges.map(([, change]) => computeChecksum(makeMetadata(change), BODY));
    sums.push(computeChecksum(makeMetadata(), BODY));
    expect(new Set(sums).size).toBe(sums.length);
  });

  it("does not move the boundary between header and body", () => {
    // A value moved from the end of the header into the body must not give the same checksum.
    const a = computeChecksum(makeMetadata({ pipeline_name: "etl" }), "x");
    const b = computeChecksum(makeMetadata({ pipeline_name: "etlx" }), "");
    expect(a).not.toBe(b);
  });

  it.each([
    ["status", { status: "failed" }],
    ["status (completed)", { status: "completed" }],
    ["error_message", { error_message: "boom" }],
    ["resume_count", { resume_count: 7 }],
    ["checksum", { checksum: "f".repeat(64) }],
    ["all mutable fields", { status: "resumed", error_message: "x", resume_count: 1 }],
  ] as [string, Partial<StoredMetadata>][])("does not change when %s changes", (_label, change) => {
    const base = computeChecksum(makeMetadata(), BODY);
    expect(computeChecksum(makeMetadata(change), BODY)).toBe(base);
  });

  it("does not depend on metadata key order", () => {
    const m = makeMetadata();
    const reversed = Object.fromEntries(Object.entries(m).reverse()) as unknown as StoredMetadata;
    expect(Object.keys(reversed)).not.toStrictEqual(Object.keys(m));
    expect(computeChecksum(reversed, BODY)).toBe(computeChecksum(m, BODY));
  });

  it("ignores extra fields on the metadata object", () => {
    const m = makeMetadata();
    const extra = { ...m, note: "not part of the record" } as StoredMetadata;
    expect(computeChecksum(extra, BODY)).toBe(computeChecksum(m, BODY));
  });

  it("verifies a record end to end: parse, recompute, compare", () => {
    const m = makeMetadata();
    m.checksum = computeChecksum(m, BODY);
    const stored = JSON.parse(JSON.stringify(m)) as unknown;
    const parsed = parseStoredMetadata(stored);
    expect(computeChecksum(parsed, BODY)).toBe(parsed.checksum);
    expect(computeChecksum(applyPatch(parsed, { status: "failed", resume_count: 2 }), BODY)).toBe(
      parsed.checksum,
    );
  });
});

describe("format versions", () => {
  it("refuses a record of a newer format with FormatTooNewError naming both versions", () => {
    const m = makeMetadata({ format_version: FORMAT_VERSION + 1 });
    // Well-formed: listings keep it (never reported corrupt, never repaired away) ...
    expect(metadataProblems(m)).toStrictEqual([]);
    // ... but it is not read with this cairn's assumptions.
    let error: unknown;
    try {
      parseStoredMetadata(m, "runs/etl_run1/3.json");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FormatTooNewError);
    expect(error).toMatchObject({
      code: ErrorCode.FormatTooNew,
      subject: "checkpoint record",
      found: FORMAT_VERSION + 1,
      supported: FORMAT_VERSION,
    });
    expect((error as Error).message).toBe(
      `runs/etl_run1/3.json: checkpoint record format version ${FORMAT_VERSION + 1} is newer than this cairn supports (${FORMAT_VERSION}); it was written by a newer cairn: upgrade cairn to use it`,
    );
    expect(() => assertSupportedFormat(m)).toThrow(`checkpoint ${m.checkpoint_id}: checkpoint record format`);
    expect(parseStoredMetadata(makeMetadata({ format_version: FORMAT_VERSION }))).toBeDefined();
  });
});

describe("parseStoredMetadata", () => {
  it("returns well-formed metadata as is", () => {
    const m = makeMetadata();
    expect(parseStoredMetadata(m)).toBe(m);
    expect(metadataProblems(m)).toStrictEqual([]);
  });

  it("accepts every status and null optionals", () => {
    for (const status of CHECKPOINT_STATUSES) {
      expect(parseStoredMetadata(makeMetadata({ status })).status).toBe(status);
    }
    const roots = makeMetadata({ parent_checkpoint_id: null, parent_checksum: null, error_message: "x" });
    expect(parseStoredMetadata(roots)).toBe(roots);
    expect(parseStoredMetadata(makeMetadata({ stage_index: 0, data_size: 0, sequence: 1 }))).toBeTruthy();
  });

  it("rejects an unknown status", () => {
    const e = corrupt(() => parseStoredMetadata(makeMetadata({ status: "done" as never })));
    expect(e.problems).toStrictEqual(['status "done" is unknown']);
    expect(e.checkpointId).toBe(makeMetadata().checkpoint_id);
    expect(e.message).toContain(makeMetadata().checkpoint_id);
  });

  it.each([
    ["non-hex", "z".repeat(64)],
    ["uppercase hex", "A".repeat(64)],
    ["too short", "a".repeat(63)],
    ["too long", "a".repeat(65)],
    ["empty", ""],
  ])("rejects a %s checksum", (_label, checksum) => {
    const e = corrupt(() => parseStoredMetadata(makeMetadata({ checksum })));
    expect(e.problems).toStrictEqual(["checksum is not a SHA-256"]);
  });

  it("rejects a non-string checksum", () => {
    const e = corrupt(() => parseStoredMetadata({ ...makeMetadata(), checksum: 12 }));
    expect(e.problems).toStrictEqual(["checksum is not a SHA-256"]);
  });

  it.each([
    ["negative", -1],
    ["fractional", 1.5],
    ["NaN", Number.NaN],
    ["string", "2"],
  ])("rejects a %s stage_index", (_label, stage_index) => {
    const e = corrupt(() => parseStoredMetadata({ ...makeMetadata(), stage_index }));
    expect(e.problems).toStrictEqual(["stage_index is not a non-negative integer"]);
  });

  it.each([
    ["sequence 0", { sequence: 0 }, "sequence is not a positive integer"],
    ["negative data_size", { data_size: -1 }, "data_size is not a non-negative integer"],
    ["negative resume_count", { resume_count: -1 }, "resume_count is not a non-negative integer"],
    ["format_version -1", { format_version: -1 }, "format_version is not a non-negative integer"],
    ["format_version 1.5", { format_version: 1.5 }, "format_version is not a non-negative integer"],
    // Well-formed, but older than any format this cairn reads: corrupt, never "too new".
    [
      "format_version 0",
      { format_version: 0 },
      `format version 0 is not one this cairn knows (it reads 1 to ${FORMAT_VERSION})`,
    ],
    ["invalid timestamp", { timestamp: "yesterday" }, "timestamp is not a date"],
    ["invalid checkpoint_id", { checkpoint_id: "../etc" }, "checkpoint_id is not a valid name"],
    ["invalid pipeline_id", { pipeline_id: "a b" }, "pipeline_id is not a valid name"],
    ["invalid stage_name", { stage_name: "" }, "stage_name is not a valid name"],
    ["numeric pipeline_name", { pipeline_name: 5 }, "pipeline_name is not a string"],
    ["numeric error_message", { error_message: 5 }, "error_message is not a string"],
    [
      "invalid parent_checkpoint_id",
      { parent_checkpoint_id: "a/b" },
      "parent_checkpoint_id is not a valid name",
    ],
    ["invalid parent_checksum", { parent_checksum: "xyz" }, "parent_checksum is not a SHA-256"],
  ] as [string, Record<string, unknown>, string][])("rejects %s", (_label, change, problem) => {
    const e = corrupt(() => parseStoredMetadata({ ...makeMetadata(), ...change }));
    expect(e.problems).toStrictEqual([problem]);
  });

  it("lists every problem when several fields are bad", () => {
    const bad = { ...makeMetadata(), status: "bogus", checksum: "nothex", stage_index: -3 };
    const e = corrupt(() => parseStoredMetadata(bad));
    expect(e.problems).toHaveLength(3);
    expect(e.problems).toContain('status "bogus" is unknown');
    expect(e.problems).toContain("checksum is not a SHA-256");
    expect(e.problems).toContain("stage_index is not a non-negative integer");
  });

  it("lists each missing field", () => {
    const m: Record<string, unknown> = { ...makeMetadata() };
    delete m.sequence;
    delete m.timestamp;
    delete m.status;
    delete m.format_version;
    delete m.stage_name;
    const e = corrupt(() => parseStoredMetadata(m));
    expect(e.problems).toStrictEqual(
      expect.arrayContaining([
        "stage_name is not a valid name",
        "sequence is not a positive integer",
        "timestamp is not a date",
        "status undefined is unknown",
        "format_version is not a non-negative integer",
      ]),
    );
    expect(e.problems).toHaveLength(5);
  });

  it("lists a problem for every field of an empty object, without a checkpoint id", () => {
    const e = corrupt(() => parseStoredMetadata({}));
    expect(e.checkpointId).toBeUndefined();
    expect(e.message).toContain("Checkpoint data is corrupt");
    // Every required field is reported (parent_* and error_message are undefined, not null).
    expect(e.problems.length).toBeGreaterThanOrEqual(12);
    for (const field of [
      "checkpoint_id",
      "pipeline_id",
      "stage_name",
      "pipeline_name",
      "stage_index",
      "sequence",
      "timestamp",
      "status",
      "checksum",
      "data_size",
      "resume_count",
      "format_version",
    ]) {
      expect(e.problems.some((p) => p.includes(field))).toBe(true);
    }
  });

  it.each([
    ["null", null],
    ["undefined", undefined],
    ["a string", "metadata"],
    ["a number", 1],
  ])("rejects %s as not an object", (_label, value) => {
    const e = corrupt(() => parseStoredMetadata(value));
    expect(e.problems).toStrictEqual(["metadata is not an object"]);
    expect(e.checkpointId).toBeUndefined();
  });

  it("prefixes problems with where the metadata came from", () => {
    const e = corrupt(() => parseStoredMetadata(makeMetadata({ status: "nope" as never }), "file meta.json"));
    expect(e.problems).toStrictEqual(['file meta.json: status "nope" is unknown']);
    expect(e.message).toContain("file meta.json");
  });
});

describe("parseBody", () => {
  const ID = "etl_run1_load_x";

  it("parses a well-formed body", () => {
    const body = parseBody(ID, BODY);
    expect(body.completed_stages).toStrictEqual(["extract", "transform"]);
    expect(body.pending_stages).toStrictEqual(["load", "report"]);
    expect(body.provenance_hashes).toStrictEqual({ extract: HASH_A, transform: HASH_B });
    expect(body.output_refs).toStrictEqual({ extract: HASH_B, transform: HASH_A });
    // state_data is still in its codec-encoded form; decodeTree revives it.
    expect(body.state_data).toStrictEqual(
      JSON.parse(encode({ input: "s3://bucket/key", rows: 10n, at: new Date(0) })),
    );
    expect(decodeTree(body.state_data)).toStrictEqual({
      input: "s3://bucket/key",
      rows: 10n,
      at: new Date(0),
    });
  });

  it("accepts empty lists and maps and null state_data", () => {
    const text = encode({
      state_data: null,
      completed_stages: [],
      pending_stages: [],
      provenance_hashes: {},
      output_refs: {},
    });
    expect(parseBody(ID, text)).toStrictEqual({
      state_data: null,
      completed_stages: [],
      pending_stages: [],
      provenance_hashes: {},
      output_refs: {},
    });
  });

  it.each(["", "{", "not json", '{"a":1,}', "undefined", "{'a':1}"])("rejects invalid JSON %j", (text) => {
    const e = corrupt(() => parseBody(ID, text));
    expect(e.checkpointId).toBe(ID);
    expect(e.problems).toStrictEqual(["body is not valid JSON"]);
    expect(e.cause).toBeInstanceOf(SyntaxError);
    expect(e.message).toContain(ID);
  });

  it.each(["null", "42", '"body"', "true"])("rejects a non-object body %s", (text) => {
    const e = corrupt(() => parseBody(ID, text));
    expect(e.problems).toStrictEqual(["body is not an object"]);
  });

  const good = {
    state_data: {},
    completed_stages: ["a"],
    pending_stages: ["b"],
    provenance_hashes: { a: HASH_A },
    output_refs: { a: HASH_B },
  };

  it.each([
    ["completed_stages not a list", { completed_stages: "a" }, "completed_stages is not a list of names"],
    [
      "completed_stages with a number",
      { completed_stages: ["a", 1] },
      "completed_stages is not a list of names",
    ],
    ["completed_stages null", { completed_stages: null }, "completed_stages is not a list of names"],
    ["pending_stages an object", { pending_stages: { 0: "b" } }, "pending_stages is not a list of names"],
    ["pending_stages with null", { pending_stages: [null] }, "pending_stages is not a list of names"],
    ["provenance_hashes a list", { provenance_hashes: [HASH_A] }, "provenance_hashes is not a map of hashes"],
    ["provenance_hashes null", { provenance_hashes: null }, "provenance_hashes is not a map of hashes"],
    [
      "provenance_hashes with a number",
      { provenance_hashes: { a: 1 } },
      "provenance_hashes is not a map of hashes",
    ],
    ["output_refs a string", { output_refs: "x" }, "output_refs is not a map of hashes"],
    ["output_refs with an object", { output_refs: { a: {} } }, "output_refs is not a map of hashes"],
  ] as [string, Record<string, unknown>, string][])("rejects %s", (_label, change, problem) => {
    const e = corrupt(() => parseBody(ID, JSON.stringify({ ...good, ...change })));
    expect(e.problems).toStrictEqual([problem]);
    expect(e.checkpointId).toBe(ID);
  });

  it("rejects a body without state_data", () => {
    const { state_data: _omit, ...rest } = good;
    const e = corrupt(() => parseBody(ID, JSON.stringify(rest)));
    expect(e.problems).toStrictEqual(["state_data is missing"]);
  });

  it("lists every problem of an empty object or an array", () => {
    for (const text of ["{}", "[]"]) {
      const e = corrupt(() => parseBody(ID, text));
      expect(e.problems).toStrictEqual([
        "completed_stages is not a list of names",
        "pending_stages is not a list of names",
        "provenance_hashes is not a map of hashes",
        "output_refs is not a map of hashes",
        "state_data is missing",
      ]);
    }
  });
});

describe("toMetadata", () => {
  it("maps snake_case to camelCase with a Date timestamp", () => {
    const m = makeMetadata({ error_message: "boom", status: "failed", resume_count: 2 });
    const out = toMetadata(m);
    expect(out).toStrictEqual({
      checkpointId: m.checkpoint_id,
      pipelineId: "etl_run1",
      pipelineName: "etl",
      stageName: "load",
      stageIndex: 2,
      sequence: 3,
      timestamp: new Date("2024-01-01T12:00:00.123Z"),
      status: "failed",
      checksum: HASH_A,
      dataSize: 1234,
      errorMessage: "boom",
      resumeCount: 2,
      parentCheckpointId: m.parent_checkpoint_id,
      parentChecksum: HASH_B,
      formatVersion: 1,
    });
    expect(out.timestamp).toBeInstanceOf(Date);
    expect(out.timestamp.toISOString()).toBe(m.timestamp);
  });

  it("omits null optionals instead of writing null or undefined", () => {
    const out = toMetadata(
      makeMetadata({ error_message: null, parent_checkpoint_id: null, parent_checksum: null }),
    );
    expect("errorMessage" in out).toBe(false);
    expect("parentCheckpointId" in out).toBe(false);
    expect("parentChecksum" in out).toBe(false);
    expect(Object.keys(out).sort()).toStrictEqual(
      [
        "checkpointId",
        "pipelineId",
        "pipelineName",
        "stageName",
        "stageIndex",
        "sequence",
        "timestamp",
        "status",
        "checksum",
        "dataSize",
        "resumeCount",
        "formatVersion",
      ].sort(),
    );
  });

  it("keeps an empty error message (only null is omitted)", () => {
    expect(toMetadata(makeMetadata({ error_message: "" })).errorMessage).toBe("");
  });

  it("does not share or change the stored metadata", () => {
    const m = makeMetadata();
    const before = structuredClone(m);
    const out = toMetadata(m);
    out.timestamp.setTime(0);
    expect(m).toStrictEqual(before);
  });
});

describe("applyPatch", () => {
  it("returns a patched copy and leaves the original unchanged", () => {
    const m = makeMetadata();
    const before = structuredClone(m);
    const next = applyPatch(m, { status: "failed", error_message: "boom", resume_count: 3 });
    expect(next).not.toBe(m);
    expect(m).toStrictEqual(before);
    expect(next).toStrictEqual({ ...before, status: "failed", error_message: "boom", resume_count: 3 });
  });

  it("returns an equal copy for an empty patch", () => {
    const m = makeMetadata();
    const next = applyPatch(m, {});
    expect(next).not.toBe(m);
    expect(next).toStrictEqual(m);
  });

  it("changes only the given fields", () => {
    const m = makeMetadata({ error_message: "old", resume_count: 1 });
    expect(applyPatch(m, { status: "completed" })).toStrictEqual({ ...m, status: "completed" });
    expect(applyPatch(m, { resume_count: 2 })).toStrictEqual({ ...m, resume_count: 2 });
    expect(applyPatch(m, { error_message: "new" })).toStrictEqual({ ...m, error_message: "new" });
    expect(applyPatch(m, { status: undefined, resume_count: undefined })).toStrictEqual(m);
  });

  it("clears the error message with null", () => {
    const m = makeMetadata({ error_message: "boom" });
    expect(applyPatch(m, { error_message: null }).error_message).toBeNull();
    expect(m.error_message).toBe("boom");
  });

  it("keeps the checksum valid: patched fields are outside it", () => {
    const m = makeMetadata();
    const patched = applyPatch(m, { status: "expired", error_message: "x", resume_count: 9 });
    expect(computeChecksum(patched, BODY)).toBe(computeChecksum(m, BODY));
  });
});

describe("compareStored", () => {
  it("orders by sequence first", () => {
    const early = makeMetadata({ sequence: 1, timestamp: "2024-12-31T00:00:00.000Z", checkpoint_id: "z_1" });
    const late = makeMetadata({ sequence: 2, timestamp: "2024-01-01T00:00:00.000Z", checkpoint_id: "a_1" });
    expect(compareStored(early, late)).toBeLessThan(0);
    expect(compareStored(late, early)).toBeGreaterThan(0);
  });

  it("orders numerically by sequence, not as text", () => {
    const nine = makeMetadata({ sequence: 9 });
    const ten = makeMetadata({ sequence: 10 });
    expect(compareStored(nine, ten)).toBeLessThan(0);
  });

  it("orders by timestamp when sequences are equal", () => {
    const early = makeMetadata({ sequence: 5, timestamp: "2024-01-01T00:00:00.000Z", checkpoint_id: "z_1" });
    const late = makeMetadata({ sequence: 5, timestamp: "2024-01-01T00:00:00.001Z", checkpoint_id: "a_1" });
    expect(compareStored(early, late)).toBeLessThan(0);
    expect(compareStored(late, early)).toBeGreaterThan(0);
  });

  it("orders by checkpoint id when sequence and timestamp are equal", () => {
    const a = makeMetadata({ sequence: 5, checkpoint_id: "run_a_1" });
    const b = makeMetadata({ sequence: 5, checkpoint_id: "run_b_1" });
    expect(compareStored(a, b)).toBeLessThan(0);
    expect(compareStored(b, a)).toBeGreaterThan(0);
  });

  it("returns 0 for the same checkpoint", () => {
    const m = makeMetadata();
    expect(compareStored(m, m)).toBe(0);
    expect(compareStored(m, { ...m, status: "failed" })).toBe(0);
  });

  it("sorts a shuffled list oldest first", () => {
    const expected = [
      makeMetadata({ sequence: 1, timestamp: "2024-01-01T00:00:00.000Z", checkpoint_id: "r_1" }),
      makeMetadata({ sequence: 2, timestamp: "2024-01-01T00:00:00.000Z", checkpoint_id: "r_2" }),
      makeMetadata({ sequence: 2, timestamp: "2024-01-01T00:00:01.000Z", checkpoint_id: "r_1" }),
      makeMetadata({ sequence: 2, timestamp: "2024-01-01T00:00:01.000Z", checkpoint_id: "r_3" }),
      makeMetadata({ sequence: 10, timestamp: "2023-01-01T00:00:00.000Z", checkpoint_id: "r_0" }),
    ];
    const shuffled = [expected[3], expected[0], expected[4], expected[2], expected[1]] as StoredMetadata[];
    expect([...shuffled].sort(compareStored)).toStrictEqual(expected);
  });
});
