/**
 * Reads the decompressed size of zstd data from its frame headers (RFC 8878), without
 * decompressing it. The zstd bindings decompress whatever they are given into one buffer, with
 * no output limit; walking the frames first lets a reader refuse a zip bomb before any memory is
 * spent on it. The decoder itself checks that each frame's output has the size its header says,
 * so the sum of the headers is a true bound.
 */
import { CheckpointCorruptError } from "../core/errors.js";

const ZSTD_MAGIC = 0xfd2fb528;
// Skippable frames (0x184D2A50 to 0x184D2A5F) carry user data and decompress to nothing.
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const DICTIONARY_ID_BYTES = [0, 1, 2, 4] as const;
const RESERVED_BLOCK = 3;
const RLE_BLOCK = 1;

const corrupt = (detail: string) => new CheckpointCorruptError(undefined, `zstd data ${detail}`);

/** One frame of zstd data: where it is, and the size its header records. */
export interface ZstdFrame {
  /** Offset of its first byte. */
  readonly start: number;
  /** Offset after its last byte. */
  readonly end: number;
  /** Decompressed size from its header; `undefined` when the header does not record it. */
  readonly contentSize: number | undefined;
  /** A skippable frame: user data that decompresses to nothing. */
  readonly skippable: boolean;
}

/** The frames of `data`, from their headers. A malformed or truncated frame is a `CheckpointCorruptError`. */
export function zstdFrames(data: Uint8Array): ZstdFrame[] {
  if (data.length === 0) throw corrupt("is empty");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const need = (at: number, bytes: number) => {
    if (at + bytes > data.length) throw corrupt("is truncated");
  };
  const frames: ZstdFrame[] = [];
  let at = 0;
  while (at < data.length) {
    const start = at;
    need(at, 4);
    const magic = view.getUint32(at, true);
    at += 4;
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      need(at, 4);
      at += 4 + view.getUint32(at, true);
      need(at, 0);
      frames.push({ start, end: at, contentSize: 0, skippable: true });
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw corrupt("does not start a zstd frame where one is expected");
    need(at, 1);
    const descriptor = view.getUint8(at);
    at += 1;
    if (descriptor & 0b1000) throw corrupt("has a frame header with its reserved bit set");
    const singleSegment = (descriptor >> 5) & 1;
    const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6] as number;
    at += (singleSegment ? 0 : 1) + (DICTIONARY_ID_BYTES[descriptor & 0b11] as number);
    need(at, sizeBytes);
    const contentSize = sizeBytes === 0 ? undefined : frameSize(view, at, sizeBytes);
    at = skipBlocks(view, at + sizeBytes, need);
    if (descriptor & 0b100) at += 4; // content checksum
    need(at, 0);
    frames.push({ start, end: at, contentSize, skippable: false });
  }
  return frames;
}

/**
 * Total decompressed size of every frame in `data`, from the headers; `undefined` when a frame
 * does not record its size (cairn always writes it; other writers may not). A malformed or
 * truncated frame is a `CheckpointCorruptError`.
 */
export function zstdContentSize(data: Uint8Array): number | undefined {
  let total = 0;
  for (const frame of zstdFrames(data)) {
    if (frame.contentSize === undefined) return undefined;
    total += frame.contentSize;
  }
  return total;
}

function frameSize(view: DataView, at: number, bytes: number): number {
  switch (bytes) {
    case 1:
      return view.getUint8(at);
    case 2:
      return view.getUint16(at, true) + 256; // the 2-byte field is offset by 256 (RFC 8878 3.1.1.1.4)
    case 4:
      return view.getUint32(at, true);
    default:
      // Sizes past 2^53 lose precision here, which no limit in bytes can tell from exact.
      return Number(view.getBigUint64(at, true));
  }
}

/** Skips a frame's blocks; returns the offset after the last one. */
function skipBlocks(view: DataView, start: number, need: (at: number, bytes: number) => void): number {
  let at = start;
  for (;;) {
    need(at, 3);
    const header = view.getUint8(at) | (view.getUint8(at + 1) << 8) | (view.getUint8(at + 2) << 16);
    at += 3;
    const type = (header >> 1) & 0b11;
    if (type === RESERVED_BLOCK) throw corrupt("has a block of the reserved type");
    // An RLE block stores one byte, repeated Block_Size times on output.
    at += type === RLE_BLOCK ? 1 : header >>> 3;
    need(at, 0);
    if (header & 1) return at;
  }
}
