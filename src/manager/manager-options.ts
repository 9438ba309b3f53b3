/** The options of a {@link CheckpointManager} and of its `importCheckpoint`. */
import type { StoreConfig, StoreSpec } from "../stores/registry.js";
import type { CompressionSetting } from "../transforms/compression.js";
import type { EncryptionOptions } from "../transforms/keys.js";

/** How to build a {@link CheckpointManager}. */
export interface CheckpointManagerOptions {
  /** Storage strategy (`file`, `sqlite`, `postgres`/`database`, `redis`, `memory`) or a store URL. */
  strategy?: string;
  /** Options of that strategy's store (camelCase; the seed's snake_case is accepted). */
  config?: StoreConfig;
  /** A store URL (`sqlite:./cairn.db`) or a store instance; takes precedence over `strategy`. */
  store?: StoreSpec;
  /** Clock used for checkpoint timestamps and retention; tests pass a fixed one. */
  clock?: () => Date;
  /** Largest checkpoint (record and outputs, bytes) a load reads; larger is `CAIRN_TOO_LARGE`. Default 512 MiB. */
  maxRecordBytes?: number;
  /** Open the store for reading: nothing is created or migrated; no store there is `CAIRN_NOT_FOUND`. */
  readOnly?: boolean;
  /**
   * Compress checkpoints and outputs at rest: `true` (the recommended algorithm), an algorithm
   * name, or `{ algorithm, level, minBytes }`. Off by default; compressed records are read either way.
   */
  compression?: CompressionSetting;
  /** Encrypt checkpoints and outputs at rest (AES-256-GCM, a data key per run): the key ring. */
  encryption?: EncryptionOptions;
}

/** Every option of {@link CheckpointManagerOptions}: the constructor refuses any other. */
export const MANAGER_OPTIONS = [
  "strategy",
  "config",
  "store",
  "clock",
  "maxRecordBytes",
  "readOnly",
  "compression",
  "encryption",
] as const satisfies readonly (keyof CheckpointManagerOptions)[];

/** Options of `importCheckpoint`. */
export interface ImportOptions {
  /** Replace a checkpoint that already exists with the same id. */
  overwrite?: boolean;
  /** Largest export file read, in bytes; larger is `CAIRN_TOO_LARGE`, checked before reading. Default 1 GiB. */
  maxImportBytes?: number;
}
