/**
 * An in-memory `ObjectClient` with the exact conditional semantics of a real bucket (an ETag that
 * changes on every write, even of the same bytes; create-only and compare-and-swap writes; key
 * order listing) and fault hooks. A development aid and the unit-test tool of the store logic; it
 * does not replace the tests against real servers (azurite, Ceph RGW).
 */
import { StoreUnavailableError, StoreUnsupportedError } from "../../core/errors.js";
import type {
  ListOptions,
  ListPage,
  ObjectClient,
  StoredObject,
  WriteCondition,
  WriteResult,
} from "./objects.js";

/** The operations of an `ObjectClient`, as fault hooks and call counters name them. */
export type ObjectOperation = "get" | "put" | "delete" | "deleteMany" | "list" | "probeConditions";

const OPERATIONS: readonly ObjectOperation[] = [
  "get",
  "put",
  "delete",
  "deleteMany",
  "list",
  "probeConditions",
];

interface Fault {
  count: number;
  /** The write is applied, then the call fails as if the answer was lost (`maybeCommitted`). */
  afterApply: boolean;
  /** The call fails with `maybeCommitted` set (implied by `afterApply`): the outcome is unknown. */
  unknownOutcome: boolean;
  /** Only calls on keys passing this test fail (and count). */
  match: ((key: string) => boolean) | undefined;
}

interface Held {
  body: Buffer;
  etag: string;
}

/** Options of {@link MemoryObjects}. */
export interface MemoryObjectsOptions {
  /** Shown in messages; default `memobj://test`. */
  location?: string;
  /** Behave like a look-alike server that accepts conditions and ignores them (probe tests). */
  ignoreConditions?: boolean;
}

/** Byte order of UTF-8 keys, as S3 lists them. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** An in-memory bucket: see the file comment. */
export class MemoryObjects implements ObjectClient {
  readonly location: string;
  private readonly objects = new Map<string, Held>();
  private sorted: string[] | undefined;
  private etags = 0;
  private readonly faults = new Map<ObjectOperation, Fault>();
  private readonly ignoreConditions: boolean;
  /** Calls per operation since the last `resetCalls()`; a test's measure of round trips. */
  readonly calls: Record<ObjectOperation, number>;
  /** Added to `Date.now()` for the server clock: moves the server's time against the caller's. */
  clockOffsetMs = 0;

  constructor(options: MemoryObjectsOptions = {}) {
    this.location = options.location ?? "memobj://test";
    this.ignoreConditions = options.ignoreConditions ?? false;
    this.calls = Object.fromEntries(OPERATIONS.map((op) => [op, 0])) as Record<ObjectOperation, number>;
  }

  /**
   * Fails the next `count` calls of `operation` (on keys passing `match`) with
   * `StoreUnavailableError`. `unknownOutcome`: the error says the write may have happened
   * (`maybeCommitted`) though it did not; `afterApply`: the write did happen, the answer is lost.
   */
  failNext(
    operation: ObjectOperation,
    count = 1,
    options: { afterApply?: boolean; unknownOutcome?: boolean; match?: (key: string) => boolean } = {},
  ): void {
    const afterApply = options.afterApply ?? false;
    const unknownOutcome = afterApply || (options.unknownOutcome ?? false);
    this.faults.set(operation, { count, afterApply, unknownOutcome, match: options.match });
  }

  /** Disarms every fault `failNext` armed. */
  clearFaults(): void {
    this.faults.clear();
  }

  /** Drops an object behind the client's back, as a lost write or a bucket policy would. */
  lose(key: string): boolean {
    this.sorted = undefined;
    return this.objects.delete(key);
  }

  /** Overwrites (or creates) an object behind the client's back, with a new ETag; no call counted. */
  poke(key: string, body: string | Buffer): void {
    this.store(key, body);
  }

  /** The body of an object without counting a call; undefined when absent. */
  peek(key: string): string | undefined {
    return this.objects.get(key)?.body.toString("utf8");
  }

  /** Every key held, in listing order, without counting a call. */
  keys(prefix = ""): string[] {
    return this.sortedKeys().filter((k) => k.startsWith(prefix));
  }

  /** Zeroes the call counters. */
  resetCalls(): void {
    for (const op of OPERATIONS) this.calls[op] = 0;
  }

  /** Calls of every operation since the last reset. */
  totalCalls(): number {
    return OPERATIONS.reduce((sum, op) => sum + this.calls[op], 0);
  }

  private serverTime(): Date {
    // A Date header has a resolution of one second: the server's time, rounded down.
    return new Date(Math.floor((Date.now() + this.clockOffsetMs) / 1000) * 1000);
  }

  /** Counts the call; throws when a fault is armed for it (before applying, unless `afterApply`). */
  private enter(operation: ObjectOperation, key: string): Fault | undefined {
    this.calls[operation]++;
    const fault = this.faults.get(operation);
    if (!fault || fault.count <= 0 || (fault.match && !fault.match(key))) return undefined;
    fault.count--;
    if (fault.count === 0) this.faults.delete(operation);
    if (!fault.afterApply) throw this.unavailable(operation, key, fault.unknownOutcome);
    return fault;
  }

  private unavailable(operation: ObjectOperation, key: string, maybeCommitted: boolean) {
    return new StoreUnavailableError("memobj", `injected fault: ${operation} ${key}`, { maybeCommitted });
  }

  private store(key: string, body: string | Buffer): Held {
    const held = { body: Buffer.from(body), etag: `"e${++this.etags}"` };
    if (!this.objects.has(key)) this.sorted = undefined;
    this.objects.set(key, held);
    return held;
  }

  private sortedKeys(): string[] {
    this.sorted ??= [...this.objects.keys()].sort(compareKeys);
    return this.sorted;
  }

  async get(key: string): Promise<StoredObject | undefined> {
    this.enter("get", key);
    const held = this.objects.get(key);
    return held && { body: Buffer.from(held.body), etag: held.etag, serverTime: this.serverTime() };
  }

  async put(key: string, body: Buffer | string, condition?: WriteCondition): Promise<WriteResult> {
    const fault = this.enter("put", key);
    const current = this.objects.get(key);
    if (condition && !this.ignoreConditions) {
      const holds = "ifNoneMatch" in condition ? current === undefined : current?.etag === condition.ifMatch;
      if (!holds) {
        if (fault) throw this.unavailable("put", key, true);
        return { ok: false };
      }
    }
    const held = this.store(key, body);
    if (fault) throw this.unavailable("put", key, true);
    return { ok: true, etag: held.etag, serverTime: this.serverTime() };
  }

  async delete(key: string): Promise<boolean> {
    const fault = this.enter("delete", key);
    const existed = this.objects.delete(key);
    if (existed) this.sorted = undefined;
    if (fault) throw this.unavailable("delete", key, true);
    return existed;
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    // One request per 1,000 keys, as S3's DeleteObjects.
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const fault = this.enter("deleteMany", batch[0] ?? "");
      for (const key of batch) this.objects.delete(key);
      this.sorted = undefined;
      if (fault) throw this.unavailable("deleteMany", batch[0] ?? "", true);
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    this.enter("list", prefix);
    const maxKeys = Math.min(Math.max(options.maxKeys ?? 1000, 1), 1000);
    let after = options.startAfter;
    let skipUnder: string | undefined;
    if (options.continuation !== undefined) {
      const marker = JSON.parse(Buffer.from(options.continuation, "base64url").toString("utf8")) as {
        after: string;
        under?: string;
      };
      if (after === undefined || compareKeys(marker.after, after) > 0) after = marker.after;
      skipUnder = marker.under;
    }
    const keys: string[] = [];
    const prefixes: string[] = [];
    let last: { after: string; under?: string } | undefined;
    for (const key of this.sortedKeys()) {
      if (!key.startsWith(prefix)) continue;
      if (after !== undefined && compareKeys(key, after) <= 0) continue;
      if (skipUnder !== undefined && key.startsWith(skipUnder)) continue;
      const at = options.delimiter ? key.indexOf(options.delimiter, prefix.length) : -1;
      const common = at >= 0 ? key.slice(0, at + (options.delimiter as string).length) : undefined;
      if (common !== undefined && common === prefixes[prefixes.length - 1]) continue;
      if (keys.length + prefixes.length >= maxKeys) {
        return { keys, prefixes, continuation: Buffer.from(JSON.stringify(last)).toString("base64url") };
      }
      if (common !== undefined) {
        prefixes.push(common);
        last = { after: key, under: common };
      } else {
        keys.push(key);
        last = { after: key };
      }
    }
    return { keys, prefixes };
  }

  async probeConditions(): Promise<void> {
    this.enter("probeConditions", "");
    const key = `cairn-probe-${Math.random().toString(36).slice(2)}`;
    const first = await this.put(key, "1", { ifNoneMatch: "*" });
    const second = await this.put(key, "2", { ifNoneMatch: "*" });
    await this.delete(key);
    if (!first.ok || second.ok) {
      throw new StoreUnsupportedError(
        "memobj",
        this.location,
        "create-only writes (If-None-Match: *)",
        "use a server that enforces conditional writes, or singleWriter: true (unsafe with two writers)",
      );
    }
  }

  async close(): Promise<void> {}
}
