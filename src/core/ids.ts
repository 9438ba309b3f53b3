import { randomBytes } from "node:crypto";
import { InvalidNameError } from "./errors.js";

/**
 * Every pipeline name, run id, stage name and checkpoint id must match this: it keeps names
 * safe as folder names, Redis keys and SQL values (no `/`, no `..`, no quotes, no spaces).
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Longest allowed name or id. */
export const MAX_NAME_LENGTH = 128;

/** Throws {@link InvalidNameError} unless `value` is a valid name; returns it typed as string. */
export function assertValidName(field: string, value: unknown): string {
  if (typeof value !== "string") {
    throw new InvalidNameError(field, value, `expected a string, got ${typeof value}`);
  }
  if (!NAME_PATTERN.test(value)) {
    const reason =
      value.length === 0
        ? "it is empty"
        : value.length > MAX_NAME_LENGTH
          ? `it is longer than ${MAX_NAME_LENGTH} characters`
          : "use letters, digits, '.', '_' and '-' only, starting with a letter or digit";
    throw new InvalidNameError(field, value, reason);
  }
  return value;
}

/** True when `value` is a valid name. */
export function isValidName(value: unknown): value is string {
  return typeof value === "string" && NAME_PATTERN.test(value);
}

/** `2024-01-01T12:00:00.123Z` → `20240101T120000123Z`: sortable and safe in ids. */
export function compactUtc(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(".", "");
}

// Random bytes are drawn from the CSPRNG in blocks: one call per 512 ids instead of one per id.
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

function randomSuffix(length: number): string {
  // base32 (lowercase, no padding): 5 bits per character.
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  if (poolOffset + length > pool.length) {
    pool = randomBytes(POOL_SIZE);
    poolOffset = 0;
  }
  let out = "";
  for (let i = 0; i < length; i++) out += alphabet[(pool[poolOffset + i] as number) & 31];
  poolOffset += length;
  return out;
}

const SUFFIX_LENGTH = 8;

/**
 * A new checkpoint id: `{pipelineId}_{stageName}_{UTC time}_{suffix}`. The random suffix (40 bits)
 * keeps ids unique for many checkpoints of one stage in the same millisecond; stores refuse a
 * duplicate id rather than overwrite. Long names are shortened so the id stays a valid name.
 */
export function newCheckpointId(pipelineId: string, stageName: string, at: Date): string {
  const tail = `_${compactUtc(at)}_${randomSuffix(SUFFIX_LENGTH)}`;
  let head = `${pipelineId}_${stageName}`;
  const room = MAX_NAME_LENGTH - tail.length;
  if (head.length > room) {
    const stageRoom = Math.max(8, room - pipelineId.length - 1);
    head = `${pipelineId}_${stageName.slice(0, stageRoom)}`.slice(0, room);
  }
  return `${head}${tail}`;
}

/** A new run id for a pipeline: `{name}_{UTC time}_{suffix}`, shortened to stay a valid name. */
export function newRunId(pipelineName: string, at: Date = new Date()): string {
  const tail = `_${compactUtc(at)}_${randomSuffix(6)}`;
  return `${pipelineName.slice(0, MAX_NAME_LENGTH - tail.length)}${tail}`;
}

const RUN_ID_TAIL = /_\d{8}T\d{9}Z_[a-z2-7]{6}$/;

/** The pipeline name inside a run id made by {@link newRunId}, or the run id itself. */
export function pipelineNameFromRunId(pipelineId: string): string {
  const stripped = pipelineId.replace(RUN_ID_TAIL, "");
  return stripped.length > 0 ? stripped : pipelineId;
}
