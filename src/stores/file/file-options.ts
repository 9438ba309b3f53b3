import { InvalidConfigError } from "../../core/errors.js";

/** The file store's options, apart so that `file-store.ts` keeps to its behaviour. */

/** Options of the file store. */
export interface FileStoreOptions {
  /** Folder holding one subfolder per run; resolved against the working directory. */
  basePath: string;
  /** Flush files and folders to disk on every write (default true); off only for tests and benchmarks. */
  fsync?: boolean;
  /** For reading only: setup() changes nothing, and a missing folder is `StoreNotFoundError`. */
  readOnly?: boolean;
  /** Changes the change feed keeps (integer ≥ 100, default 100,000); older ones are trimmed. */
  feedRetention?: number;
}

/** Every option the file store accepts: anything else is refused. */
export const FILE_STORE_OPTIONS = [
  "basePath",
  "fsync",
  "readOnly",
  "feedRetention",
] as const satisfies readonly (keyof FileStoreOptions)[];

/** The feed retention of the options, checked: an integer of at least 100. */
export function feedRetentionOf(options: FileStoreOptions, fallback: number): number {
  const n = options.feedRetention ?? fallback;
  if (!Number.isSafeInteger(n) || n < 100) {
    throw new InvalidConfigError(
      `the file store's feedRetention must be an integer of at least 100, not ${n}`,
    );
  }
  return n;
}
