import { describe, expect, it } from "vitest";
import { CairnError, ErrorCode, InvalidNameError } from "../../src/core/errors.js";
import {
  assertValidName,
  compactUtc,
  isValidName,
  MAX_NAME_LENGTH,
  NAME_PATTERN,
  newCheckpointId,
  newRunId,
  pipelineNameFromRunId,
} from "../../src/core/ids.js";

const AT = new Date("2024-01-01T12:00:00.123Z");
const COMPACT = "20240101T120000123Z";

/** Runs `fn`, expects an InvalidNameError and returns it. */
function invalidName(fn: () => unknown): InvalidNameError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidNameError);
    expect(error).toBeInstanceOf(CairnError);
    const e = error as InvalidNameError;
    expect(e.code).toBe("CAIRN_INVALID_NAME");
    expect(e.code).toBe(ErrorCode.InvalidName);
    return e;
  }
  throw new Error("expected an InvalidNameError, but nothing was thrown");
}

describe("assertValidName", () => {
  const valid = ["a", "A", "0", "A1._-x", "etl_pipeline", "run-2024.01", "a..b", "x".repeat(128)];

  it.each(valid)("accepts %j and returns it", (name) => {
    expect(assertValidName("pipelineId", name)).toBe(name);
    expect(isValidName(name)).toBe(true);
  });

  it("accepts a name of exactly MAX_NAME_LENGTH (128) characters", () => {
    expect(MAX_NAME_LENGTH).toBe(128);
    const name = `A${"b".repeat(126)}9`;
    expect(name).toHaveLength(128);
    expect(assertValidName("stageName", name)).toBe(name);
  });

  const invalid: [string, unknown][] = [
    ["empty string", ""],
    ["parent traversal", "../x"],
    ["slash", "a/b"],
    ["backslash", "a\\b"],
    ["leading dot", ".hidden"],
    ["dot-dot", ".."],
    ["leading dash", "-x"],
    ["leading underscore", "_x"],
    ["space", "a b"],
    ["semicolon", "a;b"],
    ["quote", "a'b"],
    ["double quote", 'a"b'],
    ["colon", "a:b"],
    ["non-ASCII letter", "é"],
    ["non-ASCII inside", "caf\u00e9"],
    ["emoji", "run😀"],
    ["trailing newline", "a\n"],
    ["leading newline", "\na"],
    ["NUL byte", "a\u0000"],
    ["129 characters", "x".repeat(129)],
  ];

  it.each(invalid)("rejects %s", (_label, value) => {
    const e = invalidName(() => assertValidName("stageName", value));
    expect(e.field).toBe("stageName");
    expect(e.value).toBe(value);
    expect(e.message).toContain("stageName");
    expect(isValidName(value)).toBe(false);
  });

  it("explains why an empty or too long name is rejected", () => {
    expect(invalidName(() => assertValidName("pipelineId", "")).message).toMatch(/empty/);
    expect(invalidName(() => assertValidName("pipelineId", "x".repeat(129))).message).toContain("128");
  });

  const nonStrings: [string, unknown][] = [
    ["a number", 42],
    ["undefined", undefined],
    ["null", null],
    ["an object", { name: "a" }],
    ["an array", ["a"]],
    ["a boolean", true],
  ];

  it.each(nonStrings)("rejects %s", (_label, value) => {
    const e = invalidName(() => assertValidName("checkpointId", value));
    expect(e.field).toBe("checkpointId");
    expect(e.value).toBe(value);
    expect(e.message).toContain("checkpointId");
    expect(e.message).toMatch(/expected a string/);
    expect(isValidName(value)).toBe(false);
  });

  it("names the type of a non-string in the message", () => {
    expect(invalidName(() => assertValidName("runId", 7)).message).toContain("number");
    expect(invalidName(() => assertValidName("runId", undefined)).message).toContain("undefined");
  });

  it("NAME_PATTERN agrees with isValidName", () => {
    for (const [, value] of invalid) {
      expect(typeof value === "string" && NAME_PATTERN.test(value)).toBe(false);
    }
    for (const name of valid) expect(NAME_PATTERN.test(name)).toBe(true);
  });
});

describe("compactUtc", () => {
  it("writes a sortable compact UTC time", () => {
    expect(compactUtc(AT)).toBe(COMPACT);
    expect(compactUtc(new Date(0))).toBe("19700101T000000000Z");
  });

  it("uses UTC regardless of the date's creation form", () => {
    expect(compactUtc(new Date("2024-01-01T14:00:00.123+02:00"))).toBe(COMPACT);
  });

  it("sorts in time order as plain strings", () => {
    const times = [0, 1, 999, 1000, 60_000, 1_700_000_000_000, 1_700_000_000_001];
    const compact = times.map((t) => compactUtc(new Date(t)));
    expect([...compact].sort()).toStrictEqual(compact);
  });
});

describe("newCheckpointId", () => {
  it("is a valid name with the pipeline, stage and compact UTC time", () => {
    const id = newCheckpointId("etl_pipeline_run1", "load", AT);
    expect(isValidName(id)).toBe(true);
    expect(() => assertValidName("checkpointId", id)).not.toThrow();
    expect(id.startsWith("etl_pipeline_run1_load_")).toBe(true);
    expect(id).toContain(COMPACT);
    expect(id).toMatch(/^etl_pipeline_run1_load_20240101T120000123Z_[a-z2-7]{8}$/);
  });

  it("gives 10,000 unique ids for the same stage in the same millisecond", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) ids.add(newCheckpointId("p1", "stage", AT));
    expect(ids.size).toBe(10_000);
    for (const id of ids) {
      expect(id.startsWith(`p1_stage_${COMPACT}_`)).toBe(true);
    }
  });

  it("stays a valid name with a 128-character pipelineId and a 128-character stage name", () => {
    const pipelineId = `P${"p".repeat(127)}`;
    const stage = `S${"s".repeat(127)}`;
    expect(isValidName(pipelineId)).toBe(true);
    expect(isValidName(stage)).toBe(true);
    const id = newCheckpointId(pipelineId, stage, AT);
    expect(id.length).toBeLessThanOrEqual(MAX_NAME_LENGTH);
    expect(isValidName(id)).toBe(true);
    expect(id).toContain(COMPACT);
    expect(id.startsWith("P")).toBe(true);
  });

  it("keeps the whole pipelineId when only the stage name is long", () => {
    const pipelineId = "short_run";
    const stage = `s${"t".repeat(127)}`;
    const id = newCheckpointId(pipelineId, stage, AT);
    expect(isValidName(id)).toBe(true);
    expect(id).toHaveLength(MAX_NAME_LENGTH);
    expect(id.startsWith(`${pipelineId}_st`)).toBe(true);
    expect(id).toContain(`_${COMPACT}_`);
  });

  it("is a valid name for every combination of name lengths", () => {
    const lengths = [1, 2, 8, 9, 50, 89, 90, 91, 98, 99, 100, 101, 127, 128];
    for (const p of lengths) {
      for (const s of lengths) {
        const id = newCheckpointId("p".repeat(p), "s".repeat(s), AT);
        expect(id.length, `pipeline ${p}, stage ${s}`).toBeLessThanOrEqual(MAX_NAME_LENGTH);
        expect(isValidName(id), `pipeline ${p}, stage ${s}: ${id}`).toBe(true);
        expect(id).toMatch(new RegExp(`_${COMPACT}_[a-z2-7]{8}$`));
        if (p + s + 1 + 29 <= MAX_NAME_LENGTH) {
          expect(id.startsWith(`${"p".repeat(p)}_${"s".repeat(s)}_`)).toBe(true);
        }
      }
    }
  });

  it("embeds the given time, so ids of later checkpoints carry a later time", () => {
    const a = newCheckpointId("run", "stage", new Date("2024-01-01T00:00:00.000Z"));
    const b = newCheckpointId("run", "stage", new Date("2024-01-01T00:00:00.001Z"));
    expect(a).toContain("20240101T000000000Z");
    expect(b).toContain("20240101T000000001Z");
    expect(a < b).toBe(true);
  });
});

describe("newRunId and pipelineNameFromRunId", () => {
  it("makes a valid run id from the pipeline name and time", () => {
    const runId = newRunId("etl_pipeline", AT);
    expect(isValidName(runId)).toBe(true);
    expect(runId).toMatch(/^etl_pipeline_20240101T120000123Z_[a-z2-7]{6}$/);
  });

  it("defaults to the current time", () => {
    const before = compactUtc(new Date());
    const runId = newRunId("etl_pipeline");
    const after = compactUtc(new Date());
    expect(isValidName(runId)).toBe(true);
    const time = runId.split("_").at(-2) as string;
    expect(time >= before && time <= after).toBe(true);
  });

  it("gets the pipeline name back from a run id", () => {
    expect(pipelineNameFromRunId(newRunId("etl_pipeline"))).toBe("etl_pipeline");
    for (const name of ["a", "etl", "my-pipe.v2", "x_20240101T120000123Z", "nightly_run_1"]) {
      expect(pipelineNameFromRunId(newRunId(name, AT))).toBe(name);
    }
  });

  it("returns a custom run id unchanged", () => {
    expect(pipelineNameFromRunId("custom-run")).toBe("custom-run");
    expect(pipelineNameFromRunId("etl_2024")).toBe("etl_2024");
    expect(pipelineNameFromRunId("etl_20240101T120000123Z")).toBe("etl_20240101T120000123Z");
  });

  it("shortens a long pipeline name so the run id stays a valid name", () => {
    const name = `L${"o".repeat(127)}`;
    const runId = newRunId(name, AT);
    expect(runId.length).toBeLessThanOrEqual(MAX_NAME_LENGTH);
    expect(isValidName(runId)).toBe(true);
    const recovered = pipelineNameFromRunId(runId);
    expect(name.startsWith(recovered)).toBe(true);
    expect(recovered.length).toBeGreaterThan(0);
  });
});
