/**
 * Compression codecs of the at-rest layer: checking a `compression` setting, and loading the
 * codec of an algorithm. gzip and brotli come with Node (`node:zlib`); zstd and lz4 come from
 * optional packages, imported only when an algorithm needs them, so that importing cairn loads
 * neither. Every decompression is bounded: a reader refuses output above its limit before
 * building it, so a small stored record cannot expand into gigabytes (a zip bomb).
 * The choice of the recommended algorithm and of the defaults is in the README ("Checkpoints at rest") and measured by `npm run bench -- --scenario atrest`.
 */
import { constants as bufferConstants } from "node:buffer";
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync, constants as zlib } from "node:zlib";
import { CheckpointCorruptError, InvalidArgumentError, TooLargeError } from "../core/errors.js";
import { type CodecLoadOptions, codecPackage, pickLz4, pickZstd, type ZstdModule } from "./codec-packages.js";
import { zstdFrames } from "./zstd-frames.js";

export { COMPRESSION_PACKAGES, type CodecImport, type CodecLoadOptions } from "./codec-packages.js";

/** Every compression algorithm a stored record may name. */
export const COMPRESSION_ALGORITHMS = ["gzip", "brotli", "zstd", "lz4"] as const;

/** A compression algorithm. */
export type CompressionAlgorithm = (typeof COMPRESSION_ALGORITHMS)[number];

/** What `compression` accepts. `true` means the recommended algorithm. */
export type CompressionSetting =
  | boolean
  | CompressionAlgorithm
  | { algorithm?: CompressionAlgorithm; level?: number; minBytes?: number };

/** A checked compression setting, every field filled in. */
export interface ResolvedCompression {
  /** The algorithm. */
  readonly algorithm: CompressionAlgorithm;
  /** The level, within the algorithm's range. */
  readonly level: number;
  /** Bodies shorter than this many bytes are stored uncompressed. */
  readonly minBytes: number;
}

/** One algorithm at one level. */
export interface Codec {
  /** The algorithm. */
  readonly algorithm: CompressionAlgorithm;
  /** The level `compress` uses. */
  readonly level: number;
  /** Bodies shorter than this many bytes are stored uncompressed. */
  readonly minBytes: number;
  /** Compresses `data`. */
  compress(data: Buffer): Buffer;
  /** Decompresses `data`; refuses output larger than `maxBytes` with TooLargeError (zip bombs). */
  decompress(data: Buffer, maxBytes: number): Buffer;
}

/** The range of levels of an algorithm and the level used when none is given. */
export interface LevelRange {
  /** Lowest level (fastest). */
  readonly min: number;
  /** Highest level (smallest output). */
  readonly max: number;
  /** The level used when the setting names none. */
  readonly default: number;
}

/** Levels per algorithm; the defaults were chosen on the bench payloads (`npm run bench -- --scenario atrest`). */
export const COMPRESSION_LEVELS: Readonly<Record<CompressionAlgorithm, LevelRange>> = {
  gzip: { min: 1, max: 9, default: 6 },
  brotli: { min: 0, max: 11, default: 5 },
  // On JSON text, level 1 of this zstd is both smaller and faster than 2 and 3.
  zstd: { min: 1, max: 19, default: 1 },
  // lz4-napi (lz4_flex) has one speed: no levels.
  lz4: { min: 1, max: 1, default: 1 },
};

/**
 * The algorithm `compression: true` (or a setting without `algorithm`) means: brotli at its
 * default level 5 is built into Node and, on the bench payloads, stores fewer bytes than gzip's
 * default level 6 for the same CPU time (`npm run bench -- --scenario atrest`).
 */
export const RECOMMENDED_ALGORITHM: CompressionAlgorithm = "brotli";

/**
 * Default `minBytes`: below it the envelope's own bytes and base64's third outweigh what
 * compression saves on JSON text (~300 bytes break even; from 512 bytes a body is stored in
 * about 0.7 of its size; measured by `npm run bench -- --scenario atrest`).
 */
export const DEFAULT_MIN_BYTES = 512;

const SETTING_KEYS = new Set(["algorithm", "level", "minBytes"]);

const isAlgorithm = (value: unknown): value is CompressionAlgorithm =>
  typeof value === "string" && (COMPRESSION_ALGORITHMS as readonly string[]).includes(value);

const algorithmList = COMPRESSION_ALGORITHMS.map((a) => `"${a}"`).join(", ");

function checkAlgorithm(value: unknown): CompressionAlgorithm {
  if (isAlgorithm(value)) return value;
  throw new InvalidArgumentError(
    `compression algorithm ${JSON.stringify(value) ?? String(value)} is not one of ${algorithmList}`,
  );
}

function checkLevel(algorithm: CompressionAlgorithm, value: unknown): number {
  const range = COMPRESSION_LEVELS[algorithm];
  if (value === undefined) return range.default;
  if (typeof value === "number" && Number.isInteger(value) && value >= range.min && value <= range.max) {
    return value;
  }
  const allowed =
    range.min === range.max
      ? `${algorithm} has no levels (leave level out)`
      : `${algorithm} levels are integers from ${range.min} to ${range.max}`;
  throw new InvalidArgumentError(`compression level ${String(value)} is not valid: ${allowed}`);
}

function checkMinBytes(value: unknown): number {
  if (value === undefined) return DEFAULT_MIN_BYTES;
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  throw new InvalidArgumentError(
    `compression minBytes ${String(value)} is not valid: it is a whole number of bytes, 0 or more`,
  );
}

/**
 * Checks a setting (InvalidArgumentError with a clear message for a bad algorithm, level or
 * minBytes); `undefined` when compression is off (`undefined`, `false`).
 */
export function resolveCompression(setting: unknown): ResolvedCompression | undefined {
  if (setting === undefined || setting === false) return undefined;
  if (setting === true) {
    return {
      algorithm: RECOMMENDED_ALGORITHM,
      level: COMPRESSION_LEVELS[RECOMMENDED_ALGORITHM].default,
      minBytes: DEFAULT_MIN_BYTES,
    };
  }
  if (typeof setting === "string") {
    const algorithm = checkAlgorithm(setting);
    return { algorithm, level: COMPRESSION_LEVELS[algorithm].default, minBytes: DEFAULT_MIN_BYTES };
  }
  if (typeof setting !== "object" || setting === null || Array.isArray(setting)) {
    throw new InvalidArgumentError(
      `compression must be true, false, one of ${algorithmList} or { algorithm, level, minBytes }, not ${
        Array.isArray(setting) ? "an array" : String(setting)
      }`,
    );
  }
  const unknown = Object.keys(setting).filter((key) => !SETTING_KEYS.has(key));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(
      `compression has unknown option${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}: it takes algorithm, level and minBytes`,
    );
  }
  const { algorithm: named, level, minBytes } = setting as Record<string, unknown>;
  const algorithm = named === undefined ? RECOMMENDED_ALGORITHM : checkAlgorithm(named);
  return { algorithm, level: checkLevel(algorithm, level), minBytes: checkMinBytes(minBytes) };
}

const tooLarge = (
  algorithm: CompressionAlgorithm,
  size: number | undefined,
  maxBytes: number,
  cause?: unknown,
) =>
  new TooLargeError(
    `${algorithm}-compressed data`,
    size,
    maxBytes,
    cause === undefined ? undefined : { cause },
  );

const undecodable = (algorithm: CompressionAlgorithm, cause: unknown) =>
  new CheckpointCorruptError(
    undefined,
    `${algorithm} data does not decompress: ${cause instanceof Error ? cause.message : String(cause)}`,
    { cause },
  );

/** Runs a zlib decompression capped at `maxBytes`, with its errors as cairn errors. */
function zlibDecompress(
  algorithm: CompressionAlgorithm,
  run: (data: Buffer, options: { maxOutputLength: number }) => Buffer,
  data: Buffer,
  maxBytes: number,
): Buffer {
  // zlib takes 1 to buffer.constants.MAX_LENGTH; a 0 limit is checked on the result.
  const maxOutputLength = Math.min(Math.max(1, maxBytes), bufferConstants.MAX_LENGTH);
  let out: Buffer;
  try {
    out = run(data, { maxOutputLength });
  } catch (error) {
    if ((error as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE") {
      throw tooLarge(algorithm, undefined, maxBytes, error);
    }
    throw undecodable(algorithm, error);
  }
  if (out.length > maxBytes) throw tooLarge(algorithm, out.length, maxBytes);
  return out;
}

/** Checks a size read from a header against the limit before anything is allocated. */
function checkDeclaredSize(algorithm: CompressionAlgorithm, size: number, maxBytes: number): void {
  if (size > maxBytes) throw tooLarge(algorithm, size, maxBytes);
}

/** Runs a decompression that cannot be capped (its size was checked), mapping its errors. */
function decodeChecked(algorithm: CompressionAlgorithm, declared: number, run: () => Buffer): Buffer {
  let out: Buffer;
  try {
    out = run();
  } catch (error) {
    throw undecodable(algorithm, error);
  }
  if (out.length !== declared) {
    throw new CheckpointCorruptError(
      undefined,
      `${algorithm} data decompresses to ${out.length} bytes, its header says ${declared}`,
    );
  }
  return out;
}

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * Decompresses zstd frame by frame, each bounded by the size its header records: the sum is
 * checked against the limit before anything is decompressed (the wasm decoder sizes its output
 * from the header and decodes one frame per call).
 */
function zstdDecompress(zstd: ZstdModule, data: Buffer, maxBytes: number): Buffer {
  const frames = zstdFrames(data);
  let total = 0;
  for (const frame of frames) {
    // cairn writes every frame with its size; without it the output could not be bounded.
    if (frame.contentSize === undefined) throw undecodable("zstd", "a frame does not record its size");
    total += frame.contentSize;
  }
  checkDeclaredSize("zstd", total, maxBytes);
  const parts = frames
    .filter((frame) => !frame.skippable && frame.contentSize !== 0)
    .map((frame) =>
      decodeChecked("zstd", frame.contentSize as number, () =>
        asBuffer(zstd.decompress(data.subarray(frame.start, frame.end))),
      ),
    );
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, total);
}

async function buildCodec(
  { algorithm, level, minBytes }: ResolvedCompression,
  options: CodecLoadOptions | undefined,
): Promise<Codec> {
  const base = { algorithm, level, minBytes };
  switch (algorithm) {
    case "gzip":
      return {
        ...base,
        compress: (data) => gzipSync(data, { level }),
        decompress: (data, maxBytes) => zlibDecompress(algorithm, gunzipSync, data, maxBytes),
      };
    case "brotli":
      return {
        ...base,
        compress: (data) =>
          brotliCompressSync(data, {
            params: {
              [zlib.BROTLI_PARAM_QUALITY]: level,
              [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT,
              [zlib.BROTLI_PARAM_SIZE_HINT]: data.length,
            },
          }),
        decompress: (data, maxBytes) => zlibDecompress(algorithm, brotliDecompressSync, data, maxBytes),
      };
    case "zstd": {
      // The wasm module is instantiated once, before its first use.
      const zstd = await codecPackage("zstd", pickZstd, options, (module) => module.init());
      return {
        ...base,
        compress: (data) => asBuffer(zstd.compress(data, level)),
        decompress: (data, maxBytes) => zstdDecompress(zstd, data, maxBytes),
      };
    }
    case "lz4": {
      const lz4 = await codecPackage("lz4", pickLz4, options);
      return {
        ...base,
        compress: (data) => lz4.compressSync(data),
        decompress: (data, maxBytes) => {
          // lz4-napi's block format: the decompressed size (u32 little-endian), then the block.
          if (data.length < 4) throw undecodable(algorithm, "shorter than its 4-byte size header");
          const size = data.readUInt32LE(0);
          checkDeclaredSize(algorithm, size, maxBytes);
          return decodeChecked(algorithm, size, () => lz4.uncompressSync(data));
        },
      };
    }
  }
}

/**
 * Loads the codec of `algorithm` at `level` (default: the algorithm's default). gzip and brotli
 * are synchronous `node:zlib`; zstd and lz4 import their optional package on first use, and a
 * missing one is a `MissingDriverError` naming it. A bad level or minBytes is an InvalidArgumentError.
 */
export async function loadCodec(
  algorithm: CompressionAlgorithm,
  level?: number,
  minBytes?: number,
  options?: CodecLoadOptions,
): Promise<Codec> {
  const resolved = resolveCompression({ algorithm, level, minBytes }) as ResolvedCompression;
  return buildCodec(resolved, options);
}

const decoders = new Map<CompressionAlgorithm, Promise<Codec>>();

/**
 * A codec to read data compressed with the algorithm a stored record names (readers need no
 * setting). A name this cairn does not know is a `CheckpointCorruptError`.
 */
export async function decoderFor(algorithm: string, options?: CodecLoadOptions): Promise<Codec> {
  if (!isAlgorithm(algorithm)) {
    throw new CheckpointCorruptError(
      undefined,
      `the stored data names compression algorithm ${JSON.stringify(algorithm)}, which is not one of ${algorithmList}`,
    );
  }
  if (options?.import) return loadCodec(algorithm, undefined, undefined, options);
  let pending = decoders.get(algorithm);
  if (!pending) {
    pending = loadCodec(algorithm);
    decoders.set(algorithm, pending);
    pending.catch(() => decoders.delete(algorithm));
  }
  return pending;
}
