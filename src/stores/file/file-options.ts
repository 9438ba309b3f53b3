/** The file store's options, apart so that `file-store.ts` keeps to its behaviour. */

/** Options of the file store. */
export interface FileStoreOptions {
  /** Folder holding one subfolder per run; resolved against the working directory. */
  basePath: string;
  /** Flush files and folders to disk on every write (default true); off only for tests and benchmarks. */
  fsync?: boolean;
  /** For reading only: setup() changes nothing, and a missing folder is `StoreNotFoundError`. */
  readOnly?: boolean;
}

/** Every option the file store accepts: anything else is refused. */
export const FILE_STORE_OPTIONS = [
  "basePath",
  "fsync",
  "readOnly",
] as const satisfies readonly (keyof FileStoreOptions)[];
