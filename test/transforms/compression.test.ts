/**
 * The compression codecs: round trips of every algorithm at its levels, the decompression limit
 * (zip bombs refused before their output is built), corrupt data as CAIRN_CORRUPT, settings
 * checked with clear messages, and a missing optional package reported by name.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  CheckpointCorruptError,
  ErrorCode,
  InvalidArgumentError,
  MissingDriverError,
  TooLargeError,
} from "../../src/core/errors.js";
import {
  COMPRESSION_ALGORITHMS,
  COMPRESSION_LEVELS,
  COMPRESSION_PACKAGES,
  type CompressionAlgorithm,
  DEFAULT_MIN_BYTES,
  decoderFor,
  loadCodec,
  RECOMMENDED_ALGORITHM,
  resolveCompression,
} from "../../src/transforms/compression.js";
import { zstdContentSize } from "../../src/transforms/zstd-frames.js";

/** JSON text like a stage output: repetitive keys, varied values. */
function jsonText(records: number): Buffer {
  const rows = Array.from({ length: records }, (_, i) => ({
    id: `rd-${String(i).padStart(8, "0")}`,
    site: ["berlin-dc1", "lyon-plant-2", "austin-hq"][i % 3],
    kwh: Math.round(Math.sin(i) * 1e6) / 1000,
    tags: i % 2 ? ["hvac", "validated"] : ["solar"],
  }));
  return Buffer.from(JSON.stringify(rows));
}

const levelsOf = (algorithm: CompressionAlgorithm) => {
  const { min, max, default: middle } = COMPRESSION_LEVELS[algorithm];
  return [...new Set([min, middle, max])];
};

describe.each(COMPRESSION_ALGORITHMS)("%s", (algorithm) => {
  const text = jsonText(2000);

  it.each(levelsOf(algorithm))("round-trips at level %i and makes JSON text smaller", async (level) => {
    const codec = await loadCodec(algorithm, level);
    expect(codec).toMatchObject({ algorithm, level, minBytes: DEFAULT_MIN_BYTES });
    const packed = codec.compress(text);
    expect(packed.length).toBeLessThan(text.length / 2);
    expect(codec.decompress(packed, text.length).equals(text)).toBe(true);
  });

  it("round-trips empty, one-byte, incompressible and non-UTF-8 data", async () => {
    const codec = await loadCodec(algorithm);
    for (const data of [
      Buffer.alloc(0),
      Buffer.from("x"),
      randomBytes(50_000),
      Buffer.from([0xff, 0xfe, 0]),
    ]) {
      expect(codec.decompress(codec.compress(data), data.length).equals(data)).toBe(true);
    }
  });

  it("refuses output over maxBytes and accepts it at exactly maxBytes", async () => {
    const codec = await loadCodec(algorithm);
    const packed = codec.compress(text);
    const refused = () => codec.decompress(packed, text.length - 1);
    expect(refused).toThrow(TooLargeError);
    expect(refused).toThrow(`${algorithm}-compressed data`);
    expect(codec.decompress(packed, text.length).length).toBe(text.length);
    expect(() => codec.decompress(codec.compress(Buffer.from("a")), 0)).toThrow(TooLargeError);
    expect(codec.decompress(codec.compress(Buffer.alloc(0)), 0).length).toBe(0);
  });

  it("refuses a zip bomb (64 MiB of zeros) under a 1 MiB limit", async () => {
    const codec = await loadCodec(algorithm, COMPRESSION_LEVELS[algorithm].min);
    const bomb = codec.compress(Buffer.alloc(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    let error: unknown;
    try {
      codec.decompress(bomb, 1024 * 1024);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TooLargeError);
    expect((error as TooLargeError).code).toBe(ErrorCode.TooLarge);
    expect((error as TooLargeError).limit).toBe(1024 * 1024);
  });

  it("reports data that does not decompress as CAIRN_CORRUPT", async () => {
    const codec = await loadCodec(algorithm);
    const packed = codec.compress(text);
    const damaged = Buffer.from(packed);
    // Past the headers, so that the decoder itself meets the damage.
    for (let i = 16; i < damaged.length; i += 7) damaged[i] = (damaged[i] as number) ^ 0x5a;
    for (const bad of [damaged, packed.subarray(0, packed.length >> 1), Buffer.from("not compressed!")]) {
      let error: unknown;
      try {
        // A limit far above the text: only corruption, never the limit, may refuse it.
        const out = codec.decompress(bad, text.length * 4);
        // lz4 blocks carry no checksum: damage that still decodes must at least not give the text back.
        if (algorithm === "lz4") expect(out.equals(text)).toBe(false);
        else expect.unreachable(`${algorithm} decompressed damaged data`);
      } catch (caught) {
        error = caught;
      }
      if (error === undefined) continue;
      // Foreign bytes read as an lz4 size header claim 545 MB: refused by the limit, also a refusal.
      if (algorithm === "lz4" && bad.toString() === "not compressed!")
        expect(error).toBeInstanceOf(TooLargeError);
      else expect(error).toBeInstanceOf(CheckpointCorruptError);
    }
  });

  it("is what decoderFor gives for its name, whatever level wrote the data", async () => {
    const levels = levelsOf(algorithm);
    const writer = await loadCodec(algorithm, levels.at(-1));
    const reader = await decoderFor(algorithm);
    expect(reader.algorithm).toBe(algorithm);
    expect(reader.decompress(writer.compress(text), text.length).equals(text)).toBe(true);
    expect(await decoderFor(algorithm)).toBe(reader);
  });
});

describe("zstd frames", () => {
  const raw = (text: string) => {
    // A frame without a content size: descriptor 0, a window byte, one last raw block.
    const body = Buffer.from(text);
    const block = (body.length << 3) | 1;
    return Buffer.concat([
      Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00]),
      Buffer.from([block & 0xff, (block >> 8) & 0xff, block >> 16]),
      body,
    ]);
  };

  it("bounds concatenated frames by the sum of their sizes, and skips skippable frames", async () => {
    const codec = await loadCodec("zstd");
    const a = jsonText(300);
    const b = jsonText(500);
    const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    const joined = Buffer.concat([codec.compress(a), skippable, codec.compress(b)]);
    expect(zstdContentSize(joined)).toBe(a.length + b.length);
    expect(() => codec.decompress(joined, a.length + b.length - 1)).toThrow(TooLargeError);
    expect(codec.decompress(joined, a.length + b.length).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it("refuses a frame that does not record its size, and truncated or foreign data", async () => {
    const codec = await loadCodec("zstd");
    expect(zstdContentSize(raw("abc"))).toBeUndefined();
    expect(() => codec.decompress(raw("abc"), 1000)).toThrow(/does not record its size/);
    expect(() => codec.decompress(raw("abc"), 1000)).toThrow(CheckpointCorruptError);
    const whole = codec.compress(jsonText(100));
    for (const bad of [
      whole.subarray(0, whole.length - 1),
      whole.subarray(0, 5),
      Buffer.alloc(0),
      jsonText(1),
    ]) {
      expect(() => zstdContentSize(bad)).toThrow(CheckpointCorruptError);
    }
  });
});

describe("lz4 size header", () => {
  it("refuses a header above the limit before decompressing, and a header that lies", async () => {
    const codec = await loadCodec("lz4");
    const text = jsonText(100);
    const packed = codec.compress(text);
    expect(packed.readUInt32LE(0)).toBe(text.length);
    const huge = Buffer.from(packed);
    huge.writeUInt32LE(0xffffffff, 0);
    expect(() => codec.decompress(huge, 10 * 1024 * 1024)).toThrow(
      /is 4294967295 bytes, more than the limit/,
    );
    const short = Buffer.from(packed);
    short.writeUInt32LE(text.length + 10, 0);
    expect(() => codec.decompress(short, text.length * 2)).toThrow(CheckpointCorruptError);
    expect(() => codec.decompress(Buffer.from([1, 0]), 100)).toThrow(CheckpointCorruptError);
  });
});

describe("resolveCompression", () => {
  it("is off for undefined and false, the recommended algorithm for true", () => {
    expect(resolveCompression(undefined)).toBeUndefined();
    expect(resolveCompression(false)).toBeUndefined();
    const recommended = {
      algorithm: RECOMMENDED_ALGORITHM,
      level: COMPRESSION_LEVELS[RECOMMENDED_ALGORITHM].default,
      minBytes: DEFAULT_MIN_BYTES,
    };
    expect(resolveCompression(true)).toEqual(recommended);
    expect(resolveCompression({})).toEqual(recommended);
    expect(resolveCompression({ minBytes: 0 })).toEqual({ ...recommended, minBytes: 0 });
  });

  it("fills in the defaults of a named algorithm", () => {
    for (const algorithm of COMPRESSION_ALGORITHMS) {
      expect(resolveCompression(algorithm)).toEqual({
        algorithm,
        level: COMPRESSION_LEVELS[algorithm].default,
        minBytes: DEFAULT_MIN_BYTES,
      });
    }
    expect(resolveCompression({ algorithm: "brotli", level: 11, minBytes: 64 })).toEqual({
      algorithm: "brotli",
      level: 11,
      minBytes: 64,
    });
  });

  it.each([
    ["zip", /compression algorithm "zip" is not one of "gzip", "brotli", "zstd", "lz4"/],
    ["GZIP", /compression algorithm "GZIP" is not one of/],
    [{ algorithm: "xz" }, /compression algorithm "xz" is not one of/],
    [
      { algorithm: "gzip", level: 0 },
      /compression level 0 is not valid: gzip levels are integers from 1 to 9/,
    ],
    [{ algorithm: "gzip", level: 10 }, /gzip levels are integers from 1 to 9/],
    [{ algorithm: "brotli", level: 12 }, /brotli levels are integers from 0 to 11/],
    [
      { algorithm: "zstd", level: 2.5 },
      /compression level 2.5 is not valid: zstd levels are integers from 1 to 19/,
    ],
    [{ algorithm: "zstd", level: "3" }, /compression level 3 is not valid/],
    [{ algorithm: "lz4", level: 2 }, /lz4 has no levels \(leave level out\)/],
    [{ minBytes: -1 }, /compression minBytes -1 is not valid: it is a whole number of bytes, 0 or more/],
    [{ minBytes: 1.5 }, /compression minBytes 1.5 is not valid/],
    [{ minBytes: Number.POSITIVE_INFINITY }, /compression minBytes Infinity is not valid/],
    [
      { algorithm: "gzip", lvl: 3 },
      /compression has unknown option lvl: it takes algorithm, level and minBytes/,
    ],
    [1, /compression must be true, false, one of .* or \{ algorithm, level, minBytes \}, not 1/],
    [null, /not null/],
    [["gzip"], /not an array/],
  ])("refuses %j with a clear InvalidArgumentError", (setting, message) => {
    const attempt = () => resolveCompression(setting);
    expect(attempt).toThrow(InvalidArgumentError);
    expect(attempt).toThrow(message);
  });

  it("is what loadCodec checks its level and minBytes with", async () => {
    await expect(loadCodec("gzip", 12)).rejects.toThrow(InvalidArgumentError);
    await expect(loadCodec("gzip", 1, -5)).rejects.toThrow(InvalidArgumentError);
    await expect(loadCodec("snappy" as CompressionAlgorithm)).rejects.toThrow(InvalidArgumentError);
    expect(await loadCodec("gzip", 1, 0)).toMatchObject({ level: 1, minBytes: 0 });
  });
});

describe("packages", () => {
  const missing = async () => {
    // A real import of a package that is not installed: Node's own module-not-found error.
    const name = "@cairn-test/package-that-is-not-installed";
    return import(/* @vite-ignore */ name);
  };

  it.each(["zstd", "lz4"] as const)(
    "reports a missing %s package as MissingDriverError naming it",
    async (algorithm) => {
      for (const load of [
        () => loadCodec(algorithm, undefined, undefined, { import: missing }),
        () => decoderFor(algorithm, { import: missing }),
      ]) {
        const error = await load().catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(MissingDriverError);
        expect((error as MissingDriverError).code).toBe(ErrorCode.MissingDriver);
        expect((error as MissingDriverError).packageName).toBe(COMPRESSION_PACKAGES[algorithm]);
        expect((error as Error).message).toBe(
          `${algorithm} compression needs the "${COMPRESSION_PACKAGES[algorithm]}" package: run \`npm install ${COMPRESSION_PACKAGES[algorithm]}\``,
        );
      }
    },
  );

  it("reports an installed package without the expected API as MissingDriverError", async () => {
    const error = await loadCodec("zstd", 3, undefined, {
      import: async () => ({ compress: () => 0 }),
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(MissingDriverError);
    expect(((error as Error).cause as Error).message).toMatch(/does not export what zstd compression needs/);
  });

  it("keeps the stores' wording of MissingDriverError", () => {
    expect(new MissingDriverError("sqlite", "better-sqlite3").message).toBe(
      'The sqlite store needs the "better-sqlite3" package: run `npm install better-sqlite3`',
    );
  });

  it("refuses an algorithm name it does not know as CAIRN_CORRUPT", async () => {
    for (const name of ["xz", "", "GZIP", "__proto__"]) {
      const error = await decoderFor(name).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CheckpointCorruptError);
      expect((error as Error).message).toContain(`compression algorithm ${JSON.stringify(name)}`);
    }
  });
});
