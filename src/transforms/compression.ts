/**
 * Compression codecs (placeholder of the lead: gzip and brotli from node:zlib; replaced by the
 * full module with zstd and lz4).
 */
import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from "node:zlib";
import { InvalidArgumentError } from "../core/errors.js";

export const COMPRESSION_ALGORITHMS = ["gzip", "brotli", "zstd", "lz4"] as const;
export type CompressionAlgorithm = (typeof COMPRESSION_ALGORITHMS)[number];
export type CompressionSetting =
  | boolean
  | CompressionAlgorithm
  | { algorithm?: CompressionAlgorithm; level?: number; minBytes?: number };

export interface ResolvedCompression {
  algorithm: CompressionAlgorithm;
  level: number;
  minBytes: number;
}

export interface Codec {
  readonly algorithm: CompressionAlgorithm;
  readonly level: number;
  readonly minBytes: number;
  compress(data: Buffer): Buffer;
  decompress(data: Buffer, maxBytes: number): Buffer;
}

export function resolveCompression(setting: unknown): ResolvedCompression | undefined {
  if (setting === undefined || setting === false) return undefined;
  if (setting === true) return { algorithm: "gzip", level: 6, minBytes: 256 };
  if (setting === "gzip" || setting === "brotli") return { algorithm: setting, level: 6, minBytes: 256 };
  if (typeof setting === "object" && setting !== null) {
    const s = setting as { algorithm?: CompressionAlgorithm; level?: number; minBytes?: number };
    return { algorithm: s.algorithm ?? "gzip", level: s.level ?? 6, minBytes: s.minBytes ?? 256 };
  }
  throw new InvalidArgumentError(`compression ${JSON.stringify(setting)} is not supported`);
}

export async function loadCodec(algorithm: CompressionAlgorithm, level = 6, minBytes = 256): Promise<Codec> {
  if (algorithm === "gzip")
    return {
      algorithm,
      level,
      minBytes,
      compress: (data) => gzipSync(data, { level }),
      decompress: (data, maxBytes) => gunzipSync(data, { maxOutputLength: maxBytes }),
    };
  if (algorithm === "brotli")
    return {
      algorithm,
      level,
      minBytes,
      compress: (data) => brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: level } }),
      decompress: (data, maxBytes) => brotliDecompressSync(data, { maxOutputLength: maxBytes }),
    };
  throw new InvalidArgumentError(`compression ${algorithm} is not available`);
}

export async function decoderFor(algorithm: string): Promise<Codec> {
  if (algorithm === "gzip" || algorithm === "brotli") return loadCodec(algorithm);
  throw new InvalidArgumentError(`compression ${algorithm} is not available`);
}
