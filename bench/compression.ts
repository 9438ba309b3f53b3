/**
 * `npx tsx bench/compression.ts`: ratio and speed of every compression algorithm at a few levels
 * on the bench payloads (the growth run's 200 stage outputs of ~100 KB, the 10 KB and 1 MB
 * states), as the at-rest layer uses them: the canonical JSON text compressed, then base64'd
 * inside the stored envelope. The figures choose the recommended algorithm, its level and the
 * default minBytes (docs/notes/i13-compress.md). Prints Markdown; `--json FILE` also saves the rows.
 * An algorithm whose package is not installed is reported and skipped.
 */
import { writeFile } from "node:fs/promises";
import { encode } from "../src/core/codec.js";
import {
  COMPRESSION_ALGORITHMS,
  COMPRESSION_LEVELS,
  type Codec,
  type CompressionAlgorithm,
  loadCodec,
} from "../src/transforms/compression.js";
import { table } from "./lib/markdown.js";
import { makeReadings, standardPayloads } from "./lib/payload.js";

const LEVELS: Record<CompressionAlgorithm, number[]> = {
  gzip: [1, 2, 4, 6, 9],
  brotli: [1, 2, 3, 4, 5],
  zstd: [1, 2, 3, 5, 7, 9],
  lz4: [1],
};
/** Sizes (bytes of canonical text) at which the default minBytes is decided. */
const SMALL_SIZES = [128, 256, 384, 512, 768, 1024, 1536, 2048, 4096];
const GROWTH_STAGES = 200;
const GROWTH_OUTPUT_BYTES = 100 * 1024;
/** Each timing runs until this many CPU milliseconds (and at least MIN_REPS times). */
const BUDGET_MS = 200;
const MIN_REPS = 3;
/** Speeds on the growth payload are timed on its first outputs (2 MB); its ratios on all of them. */
const TIMED_GROWTH_OUTPUTS = 20;

interface Texts {
  label: string;
  parts: Buffer[];
  bytes: number;
  /** How many of the parts the speeds are timed on. */
  timed: number;
}

interface Row {
  payload: string;
  algorithm: CompressionAlgorithm;
  level: number;
  bytes: number;
  compressed: number;
  /** Compressed / original. */
  ratio: number;
  /** Envelope with base64 of the compressed bytes / original: what a store holds. */
  storedRatio: number;
  compressMBps: number;
  decompressMBps: number;
  /** Milliseconds per MB of text to compress and base64 it (a write's added CPU). */
  writeMsPerMB: number;
  /** Milliseconds per MB of text to un-base64 and decompress it (a read's added CPU). */
  readMsPerMB: number;
}

/** The envelope's own bytes around the base64 text, per algorithm (no encryption). */
const envelopeBytes = (algorithm: CompressionAlgorithm) =>
  Buffer.byteLength(JSON.stringify({ $cairn: "rest", v: 1, z: algorithm, d: "" }));
const base64Bytes = (n: number) => 4 * Math.ceil(n / 3);

/**
 * CPU milliseconds of one call of `fn` (user + system, averaged over calls for at least
 * BUDGET_MS of CPU): compression is pure CPU work on this thread, and CPU time stays honest on a
 * shared machine where wall-clock time depends on what else runs.
 */
function time(fn: () => void): number {
  fn(); // warm-up: first-call allocation and JIT out of the samples
  const start = process.cpuUsage();
  let calls = 0;
  let spent = 0;
  while (calls < MIN_REPS || spent < BUDGET_MS) {
    fn();
    calls++;
    const used = process.cpuUsage(start);
    spent = (used.user + used.system) / 1000;
  }
  return spent / calls;
}

function measure(texts: Texts, codec: Codec): Row {
  const packed = texts.parts.map((part) => codec.compress(part));
  const encoded = packed.map((p) => p.toString("base64"));
  texts.parts.forEach((part, i) => {
    if (!codec.decompress(packed[i] as Buffer, part.length).equals(part)) {
      throw new Error(`${codec.algorithm} ${codec.level} does not round-trip ${texts.label}`);
    }
  });
  const compressed = packed.reduce((sum, p) => sum + p.length, 0);
  const stored = packed.reduce((sum, p) => sum + envelopeBytes(codec.algorithm) + base64Bytes(p.length), 0);
  const timed = texts.parts.slice(0, texts.timed);
  const timedMB = timed.reduce((sum, p) => sum + p.length, 0) / 1e6;
  const compressMs = time(() => {
    for (const part of timed) codec.compress(part);
  });
  const decompressMs = time(() => {
    for (const [i, part] of timed.entries()) codec.decompress(packed[i] as Buffer, part.length);
  });
  const writeMs = time(() => {
    for (const part of timed) codec.compress(part).toString("base64");
  });
  const readMs = time(() => {
    for (const [i, part] of timed.entries()) {
      codec.decompress(Buffer.from(encoded[i] as string, "base64"), part.length);
    }
  });
  const mbps = (ms: number) => timedMB / (ms / 1000);
  return {
    payload: texts.label,
    algorithm: codec.algorithm,
    level: codec.level,
    bytes: texts.bytes,
    compressed,
    ratio: compressed / texts.bytes,
    storedRatio: stored / texts.bytes,
    compressMBps: mbps(compressMs),
    decompressMBps: mbps(decompressMs),
    writeMsPerMB: writeMs / timedMB,
    readMsPerMB: readMs / timedMB,
  };
}

const textsOf = (label: string, values: unknown[], timed = values.length): Texts => {
  const parts = values.map((value) => Buffer.from(encode(value)));
  return { label, parts, bytes: parts.reduce((sum, p) => sum + p.length, 0), timed };
};

async function codecs(): Promise<Codec[]> {
  const loaded: Codec[] = [];
  for (const algorithm of COMPRESSION_ALGORITHMS) {
    for (const level of LEVELS[algorithm]) {
      try {
        loaded.push(await loadCodec(algorithm, level));
      } catch (error) {
        console.error(`skipped ${algorithm} ${level}: ${(error as Error).message}`);
        break;
      }
    }
  }
  return loaded;
}

const fixed = (digits: number) => (x: number) => x.toFixed(digits);

function renderRows(rows: Row[]): string {
  return table(
    [
      "payload",
      "algorithm",
      "level",
      "ratio",
      "stored (base64 + envelope)",
      "compress MB/s",
      "decompress MB/s",
      "write + ms/MB",
      "read + ms/MB",
    ],
    rows.map((r) => [
      r.payload,
      r.algorithm,
      String(r.level),
      fixed(3)(r.ratio),
      `${fixed(3)(r.storedRatio)}×`,
      fixed(0)(r.compressMBps),
      fixed(0)(r.decompressMBps),
      fixed(1)(r.writeMsPerMB),
      fixed(1)(r.readMsPerMB),
    ]),
  );
}

/** Stored bytes / plain bytes of small bodies at each algorithm's default level: where minBytes pays. */
function renderSmall(loaded: Codec[]): string {
  const defaults = COMPRESSION_ALGORITHMS.flatMap((algorithm) => {
    const codec = loaded.find(
      (c) => c.algorithm === algorithm && c.level === COMPRESSION_LEVELS[algorithm].default,
    );
    return codec ? [codec] : [];
  });
  const rows = SMALL_SIZES.map((size) => {
    // A stage output of that size (meter readings).
    const output = Buffer.from(encode(makeReadings(size, 99)));
    return [
      String(output.length),
      ...defaults.map((codec) => {
        const stored = envelopeBytes(codec.algorithm) + base64Bytes(codec.compress(output).length);
        return `${fixed(2)(stored / output.length)}×`;
      }),
    ];
  });
  return table(["plain bytes", ...defaults.map((c) => `${c.algorithm} ${c.level}`)], rows);
}

async function main(): Promise<void> {
  const jsonAt = process.argv.indexOf("--json");
  const jsonFile = jsonAt > 0 ? process.argv[jsonAt + 1] : undefined;
  const loaded = await codecs();
  const [small, large] = standardPayloads();
  const payloads: Texts[] = [
    textsOf(
      `growth: ${GROWTH_STAGES} outputs of ~100 KB`,
      Array.from({ length: GROWTH_STAGES }, (_, i) => makeReadings(GROWTH_OUTPUT_BYTES, 7000 + i)),
      TIMED_GROWTH_OUTPUTS,
    ),
    textsOf("10 KB state", [small?.records]),
    textsOf("1 MB state", [large?.records]),
  ];
  const rows: Row[] = [];
  for (const texts of payloads) {
    for (const codec of loaded) {
      const row = measure(texts, codec);
      console.error(`${texts.label} ${codec.algorithm} ${codec.level}: ${row.storedRatio.toFixed(3)}×`);
      rows.push(row);
    }
  }
  const base64 = payloads.map((texts) => {
    const timed = texts.parts.slice(0, texts.timed);
    const ms = time(() => {
      for (const part of timed) part.toString("base64");
    });
    return `${texts.label}: ${(ms / (timed.reduce((sum, p) => sum + p.length, 0) / 1e6)).toFixed(2)} ms/MB`;
  });
  console.log(`# Compression on the bench payloads (Node ${process.version})\n`);
  console.log(renderRows(rows));
  console.log(`\nbase64 alone (no compression): ${base64.join("; ")}\n`);
  console.log("## Small bodies: stored / plain at each algorithm's default level\n");
  console.log(renderSmall(loaded));
  if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(rows, null, 2)}\n`);
}

await main();
