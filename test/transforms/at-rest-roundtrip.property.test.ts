/**
 * Property test of the at-rest layer on the memory store: arbitrary states and outputs go
 * through every combination of settings (compression off or each available algorithm, at
 * `minBytes` edges, times encryption off or on) and come back exactly, the checkpoint validates,
 * and a reader with no setting but the keys reads the same. fast-check prints the seed and path
 * of a failure, so it reproduces with `fc.assert(..., { seed, path })`.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { CheckpointManager, type CheckpointManagerOptions } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { COMPRESSION_ALGORITHMS, loadCodec } from "../../src/transforms/compression.js";
import { ring } from "../support/at-rest-runs.js";

// A tenth of the codec test's runs per setting (there are 18 to 34 settings), never fewer than 20.
const RUNS = {
  numRuns: Math.max(20, Math.round(Number(process.env.CAIRN_PROPERTY_RUNS ?? 300) / 10)),
  verbose: 1,
} as const;

/** The algorithms this install can use (zstd and lz4 come from optional packages). */
const available: string[] = [];
for (const algorithm of COMPRESSION_ALGORITHMS) {
  try {
    await loadCodec(algorithm);
    available.push(algorithm);
  } catch {
    console.warn(`at-rest property test: ${algorithm} is not available here, left out`);
  }
}

/** minBytes at its edges: everything compressed, nearly everything, some, nothing. */
const MIN_BYTES = [0, 1, 300, 1 << 24];

type Setting = [string, Pick<CheckpointManagerOptions, "compression" | "encryption">];
const settings: Setting[] = [];
for (const encrypted of [false, true]) {
  const encryption = encrypted ? { encryption: ring() } : {};
  const tag = encrypted ? "encrypted" : "clear";
  settings.push([`no compression, ${tag}`, encryption]);
  for (const algorithm of available)
    for (const minBytes of MIN_BYTES)
      settings.push([
        `${algorithm} minBytes ${minBytes}, ${tag}`,
        { ...encryption, compression: { algorithm, minBytes } as CheckpointManagerOptions["compression"] },
      ]);
}

const text = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.string({ unit: "grapheme" }),
  // Long and repetitive, so it compresses: crosses the minBytes edges.
  fc
    .tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 400 }))
    .map(([s, n]) => s.repeat(n)),
);
const leaf = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.double(),
  fc.integer(),
  text,
  fc.bigInt(),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
);
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie("value"), { maxKeys: 6 }),
    fc.array(fc.tuple(fc.string({ maxLength: 4 }), tie("value")), { maxLength: 3 }).map((e) => new Map(e)),
  ),
}));
const stage = fc.constantFrom("a", "b", "stage-c", "d_4");
const input = fc.record({
  state: fc.dictionary(fc.string({ maxLength: 8 }), value, { maxKeys: 5, noNullPrototype: true }),
  outputs: fc.dictionary(stage, value, { maxKeys: 4, noNullPrototype: true }),
});

const store = new MemoryStore({ name: "at-rest-property" });
const managers: CheckpointManager[] = [];
const manager = (options: CheckpointManagerOptions) => {
  const made = new CheckpointManager({ ...options, store });
  managers.push(made);
  return made;
};
afterAll(async () => {
  for (const m of managers) await m.close();
});

let runs = 0;

describe("round trip through every at-rest setting", () => {
  it.each(settings)("%s", async (_name, options) => {
    const writer = manager(options);
    // The reader has the keys and no other setting: compression is read from the envelopes.
    const reader = manager(options.encryption ? { encryption: options.encryption } : {});
    const inner = (await writer.getStore()).inner;
    let compressed = 0;
    await fc.assert(
      fc.asyncProperty(input, async ({ state, outputs }) => {
        const pipelineId = `prop-${++runs}`;
        const completed = Object.keys(outputs);
        const id = await writer.createCheckpoint({
          pipelineId,
          stageName: completed.at(-1) ?? "start",
          stageIndex: completed.length,
          stateData: state,
          completedStages: completed,
          agentOutputs: outputs,
          status: "completed",
        });
        for (const m of [writer, reader]) {
          const loaded = await m.loadCheckpoint(id);
          expect(loaded.stateData).toStrictEqual(state);
          expect({ ...loaded.agentOutputs }).toStrictEqual(outputs);
          expect((await m.validateCheckpoint(id)).valid).toBe(true);
        }
        expect((await reader.loadLatestCheckpoint(pipelineId))?.metadata.checkpointId).toBe(id);
        // Stored as the setting says: encrypted every time when on, compressed when it paid.
        const stored = (await inner.getCheckpoint(id))?.body ?? "";
        // (The header, not anywhere: a plain body may hold the same text in its state.)
        expect(/^\{"\$cairn":"rest","v":1,("z":"\w+",)?"e":\{"a":"A256GCM"/.test(stored)).toBe(
          options.encryption !== undefined,
        );
        if (stored.startsWith('{"$cairn":"rest","v":1,"z":"')) compressed++;
      }),
      RUNS,
    );
    const minBytes = (options.compression as { minBytes?: number } | undefined)?.minBytes;
    if (minBytes === undefined || minBytes > 1 << 20) expect(compressed).toBe(0);
    else expect(compressed).toBeGreaterThan(0);
  });
});
