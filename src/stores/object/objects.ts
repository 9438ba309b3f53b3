/**
 * What the object-storage stores (`s3`, `azure`) need from a bucket or container: a handful of
 * conditional object operations. The store logic (`object-store.ts`) is written once against this
 * interface; `s3/objects.ts` and `azure/objects.ts` adapt the two SDKs to it, each hiding its
 * server's quirks (ETag quoting, a 412 where a 404 was meant, a 500 whose outcome is unknown).
 *
 * Keys are relative to the store's prefix, `/`-separated, never starting with `/`.
 */

/** A precondition of a write. */
export type WriteCondition =
  /** Create only: fails when the key exists (S3 `If-None-Match: *`, Azure `ifNoneMatch: "*"`). */
  | { ifNoneMatch: "*" }
  /** Compare-and-swap: fails unless the object's current ETag is this one. */
  | { ifMatch: string };

/** An object as read. */
export interface StoredObject {
  body: Buffer;
  /** The ETag as the adapter normalizes it (opaque to callers; pass it back in `ifMatch`). */
  etag: string;
  /** The server's clock when it answered (its `Date` header), for lease expiry. */
  serverTime: Date;
}

/** The outcome of a conditional write. */
export type WriteResult =
  | { ok: true; etag: string; serverTime: Date }
  /** The condition did not hold: nothing was written. */
  | { ok: false };

/** One page of a listing, in key order (byte order of UTF-8 keys). */
export interface ListPage {
  /** Keys under the prefix (relative to the store's prefix, like every key). */
  keys: string[];
  /** With a delimiter: the distinct key prefixes up to and including it (`runs/a/`). */
  prefixes: string[];
  /** Present when more keys follow: pass it as `continuation`. */
  continuation?: string;
}

/** Options of `list`. */
export interface ListOptions {
  /** Only keys after this one (S3 `StartAfter`). */
  startAfter?: string;
  /** Group keys by this delimiter after the prefix (usually `/`). */
  delimiter?: string;
  /** At most this many keys and prefixes per page (1 to 1,000). */
  maxKeys?: number;
  /** The `continuation` of the previous page. */
  continuation?: string;
}

/**
 * A bucket or container under a prefix, with conditional writes. Every method throws
 * `StoreUnavailableError` when the server cannot be reached within the configured timeout
 * (`maybeCommitted` set for a write whose outcome is unknown), and `StoreOperationError` for any
 * other failure (after the SDK's own retries of throttling and 5xx answers).
 */
export interface ObjectClient {
  /** Where the objects live, for messages: `s3://bucket/prefix (endpoint)`, `azblob://container/prefix`. */
  readonly location: string;

  /** The object, or undefined when the key does not exist. */
  get(key: string): Promise<StoredObject | undefined>;

  /**
   * Writes the object. Without a condition it always succeeds (last writer wins); with one it
   * succeeds only if the condition held, atomically on the server. A server answer whose
   * outcome is unknown (a 500 to a conditional put under contention) is resolved by the adapter
   * by reading the key back: the write succeeded exactly when the key now holds `body`.
   */
  put(key: string, body: Buffer | string, condition?: WriteCondition): Promise<WriteResult>;

  /** Deletes the object; false when it did not exist. Unconditional. */
  delete(key: string): Promise<boolean>;

  /** Deletes many objects in as few requests as the server allows (S3 `DeleteObjects`, Azure batch). */
  deleteMany(keys: readonly string[]): Promise<void>;

  /** One page of the keys that start with `prefix`. */
  list(prefix: string, options?: ListOptions): Promise<ListPage>;

  /**
   * Proves that the server enforces create-only writes: writes a random key with
   * `If-None-Match: *` twice and deletes it. Throws `StoreUnsupportedError` naming the endpoint
   * and the missing feature when the second write succeeds or the server answers 501.
   */
  probeConditions(): Promise<void>;

  /** Releases sockets. */
  close(): Promise<void>;
}
