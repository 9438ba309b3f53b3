/** The record format registry: each format's rules, the v1 → v2 upcaster, and the version bounds. */
import { afterEach, describe, expect, it } from "vitest";
import { encode } from "../../src/core/codec.js";
import { CheckpointCorruptError, FormatTooNewError } from "../../src/core/errors.js";
import {
  BUILTIN_FORMATS,
  bodyText,
  computeChecksum,
  FORMAT_V1,
  FORMAT_V2,
  formatOf,
  oldestFormatVersion,
  parseBody,
  type RecordFormat,
  readBody,
  recordFormats,
  useRecordFormats,
} from "../../src/core/formats.js";
import { parseStoredMetadata, type StoredMetadata } from "../../src/core/record.js";
import { FORMAT_VERSION } from "../../src/core/types.js";
import { buildBody, EncodedOutput } from "../../src/manager/build.js";

const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);

function meta(overrides: Partial<StoredMetadata> = {}): StoredMetadata {
  return {
    checkpoint_id: "etl_run1_load_x",
    pipeline_id: "etl_run1",
    pipeline_name: "etl",
    stage_name: "load",
    stage_index: 1,
    sequence: 2,
    timestamp: "2024-01-01T12:00:00.123Z",
    status: "completed",
    checksum: "0".repeat(64),
    data_size: 10,
    error_message: null,
    resume_count: 0,
    parent_checkpoint_id: null,
    parent_checksum: null,
    format_version: FORMAT_VERSION,
    ...overrides,
  };
}

/** A body as cairn 1.x wrote it (format 1): no version fields. */
const V1_BODY = bodyText(
  {
    completed_stages: ["extract", "load"],
    output_refs: { extract: HASH_A, load: HASH_B },
    pending_stages: ["report"],
    provenance_hashes: { extract: "p1", load: "p2" },
  },
  encode({ rows: 3n }),
);

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
});

describe("the built-in registry", () => {
  it("reads formats 1 and 2, oldest first, and writes the newest", () => {
    expect(FORMAT_VERSION).toBe(2);
    expect(recordFormats().map((f) => f.version)).toEqual([1, 2]);
    expect(oldestFormatVersion()).toBe(1);
    expect(BUILTIN_FORMATS.at(-1)?.version).toBe(FORMAT_VERSION);
    expect(FORMAT_V2.upcast).toBeUndefined();
  });

  it("upcasts a format 1 body: no pipeline version, every output at version 1, no migrations", () => {
    const { stored, current } = readBody(meta({ format_version: 1 }), V1_BODY);
    expect(stored).toStrictEqual(JSON.parse(V1_BODY));
    expect(current).toStrictEqual({
      ...JSON.parse(V1_BODY),
      pipeline_version: null,
      output_versions: { extract: 1, load: 1 },
      output_migrations: {},
    });
  });

  it("does not upcast a format 2 body, and writes the version fields sorted among the others", () => {
    const text = buildBody({
      stateText: encode({ rows: 3n }),
      completedStages: ["extract", "load"],
      pendingStages: ["report"],
      provenanceHashes: { load: "p2", extract: "p1" },
      outputs: new Map([
        ["load", EncodedOutput.fromText('"l"')],
        ["extract", EncodedOutput.fromText('"e"')],
      ]),
      pipelineVersion: "2.0.0",
      outputVersions: { load: 3 },
      outputMigrations: { load: { from: 1, to: 3, by: "2.0.0" } },
    });
    expect(text.startsWith('{"completed_stages":["extract","load"],"output_migrations":{"load":')).toBe(true);
    expect(text).toContain('"output_versions":{"extract":1,"load":3},"pending_stages":["report"]');
    expect(text).toContain(',"pipeline_version":"2.0.0","provenance_hashes":{"extract":"p1","load":"p2"}');
    const body = parseBody(meta(), text);
    expect(body.output_migrations).toStrictEqual({ load: { from: 1, to: 3, by: "2.0.0" } });
    expect(readBody(meta(), text).stored).toStrictEqual(body);
  });

  it("keeps the checksum rule of format 1 for format 2 (the version is in the checksummed header)", () => {
    const m1 = meta({ format_version: 1 });
    const m2 = meta({ format_version: 2 });
    expect(FORMAT_V1.checksum(m1, V1_BODY)).toBe(computeChecksum(m1, V1_BODY));
    expect(FORMAT_V2.checksum(m2, V1_BODY)).toBe(computeChecksum(m2, V1_BODY));
    expect(computeChecksum(m1, V1_BODY)).not.toBe(computeChecksum(m2, V1_BODY));
  });

  it("refuses a format 2 body whose version fields are missing or inconsistent", () => {
    const v2 = (change: Record<string, unknown>) =>
      JSON.stringify({
        ...JSON.parse(V1_BODY),
        pipeline_version: null,
        output_versions: { extract: 1, load: 1 },
        output_migrations: {},
        ...change,
      });
    const problems = (text: string) => {
      try {
        parseBody(meta(), text);
      } catch (error) {
        expect(error).toBeInstanceOf(CheckpointCorruptError);
        return (error as CheckpointCorruptError).problems;
      }
      return [];
    };
    expect(problems(v2({}))).toEqual([]);
    // A format 1 body is not a format 2 body: a record cannot claim a format it lacks.
    expect(problems(V1_BODY)).toEqual([
      "pipeline_version is neither a string nor null",
      "output_versions is not a map of positive integers",
      "output_migrations is not an object",
    ]);
    expect(problems(v2({ pipeline_version: 2 }))).toEqual(["pipeline_version is neither a string nor null"]);
    expect(problems(v2({ output_versions: { extract: 1, load: 0 } }))).toEqual([
      "output_versions is not a map of positive integers",
    ]);
    expect(problems(v2({ output_versions: { extract: 1 } }))).toEqual([
      "output_versions does not name exactly the stages of output_refs",
    ]);
    expect(problems(v2({ output_migrations: { gone: { from: 1, to: 2, by: null } } }))).toEqual([
      "output_migrations.gone is not a migration of a stored output",
    ]);
    expect(problems(v2({ output_migrations: { load: { from: 2, to: 2, by: null } } }))).toEqual([
      "output_migrations.load is not a migration of a stored output",
    ]);
  });
});

describe("version bounds", () => {
  it("refuses a version above the newest with FormatTooNewError naming both", () => {
    const m = meta({ format_version: FORMAT_VERSION + 1 });
    expect(() => formatOf(m)).toThrow(FormatTooNewError);
    expect(() => parseStoredMetadata(m)).toThrow(
      `checkpoint record format version ${FORMAT_VERSION + 1} is newer than this cairn supports (${FORMAT_VERSION})`,
    );
    expect(() => parseBody(m, V1_BODY)).toThrow(FormatTooNewError);
  });

  it("calls a version below the oldest corrupt, not too new", () => {
    const m = meta({ format_version: 0 });
    let error: unknown;
    try {
      parseStoredMetadata(m);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CheckpointCorruptError);
    expect(error).not.toBeInstanceOf(FormatTooNewError);
    expect((error as Error).message).toContain("format version 0 is not one this cairn knows");
    expect(() => parseBody(m, V1_BODY)).toThrow(CheckpointCorruptError);
  });
});

describe("useRecordFormats", () => {
  const v0: RecordFormat = {
    version: 0,
    description: "synthetic",
    checksum: () => "0".repeat(64),
    parseBody: (_id, text) => JSON.parse(text),
    fields: [],
    upcast: (body) => body,
  };

  it("installs an ordered, contiguous registry and restores the previous one", () => {
    restore = useRecordFormats([v0, FORMAT_V1, FORMAT_V2]);
    expect(oldestFormatVersion()).toBe(0);
    restore();
    restore = undefined;
    expect(recordFormats()).toBe(BUILTIN_FORMATS);
  });

  it("refuses a registry with a gap, without an upcaster, or not ending at the current version", () => {
    expect(() => useRecordFormats([v0, FORMAT_V2])).toThrow(/contiguous/);
    expect(() => useRecordFormats([{ ...v0, upcast: undefined }, FORMAT_V1, FORMAT_V2])).toThrow(
      /no upcaster/,
    );
    expect(() => useRecordFormats([v0, FORMAT_V1])).toThrow(/current format version/);
    expect(recordFormats()).toBe(BUILTIN_FORMATS);
  });
});
