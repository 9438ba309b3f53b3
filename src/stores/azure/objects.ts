/**
 * `ObjectClient` over Azure Blob Storage (`@azure/storage-blob`, loaded lazily). Blobs are block
 * blobs written whole in one `Put Blob`; conditions are `If-None-Match: *` and `If-Match`; the
 * server's `Date` header is the lease clock; deletes of many blobs go in blob batches of 256.
 * Every call ends within `requestTimeoutMs` (the SDK's retries included) or throws
 * `StoreUnavailableError`.
 */
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import type { BlobBatchDeleteBlobsResponse } from "@azure/storage-blob";
import { ClosedError, StoreOperationError, StoreUnsupportedError } from "../../core/errors.js";
import type {
  ListOptions,
  ListPage,
  ObjectClient,
  StoredObject,
  WriteCondition,
  WriteResult,
} from "../object/objects.js";
import { conditionalPut, isConditionFailure, quoteEtag } from "./conditional-put.js";
import { type AzureObjectsOptions, parseAzureObjectsOptions } from "./config.js";
import { isNotFound, isServerBusy, STRATEGY, statusOf, storeError } from "./errors.js";
import { listPage } from "./listing.js";
import { type ContainerClients, containerClients, Deadline, loadAzureSdk } from "./sdk.js";

/** Blobs per batch request: Azure's limit. */
export const BATCH_SIZE = 256;
/** Batch requests in flight at once. */
const BATCH_CONCURRENCY = 4;

/** Options of {@link createAzureObjects}. */
export interface AzureObjectsFactoryOptions extends AzureObjectsOptions {
  /** Never creates the container (and the store writes nothing). */
  readOnly?: boolean;
}

async function readAll(stream: Readable | undefined, signal: AbortSignal): Promise<Buffer> {
  if (!stream) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  const onAbort = () =>
    stream.destroy(Object.assign(new Error("the read was aborted"), { name: "AbortError" }));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  return Buffer.concat(chunks);
}

/** An Azure Blob container under a prefix, as an {@link ObjectClient}. */
export class AzureObjects implements ObjectClient {
  /** `azblob://container/prefix (container URL)`. */
  readonly location: string;
  /** The container's URL (no SAS): with the container, what identifies the server for caches. */
  readonly endpoint: string;
  private closed = false;

  /** Use {@link createAzureObjects}. */
  constructor(
    private readonly clients: ContainerClients,
    readonly container: string,
    /** The store's prefix, normalized ("" or `a/b`). */
    readonly prefix: string,
    private readonly timeoutMs: number,
    private readonly listStartFrom: boolean,
  ) {
    this.endpoint = clients.url;
    this.location = `azblob://${container}/${prefix} (${clients.url})`;
  }

  private get root(): string {
    return this.prefix === "" ? "" : `${this.prefix}/`;
  }

  private deadline(): Deadline {
    if (this.closed) throw new ClosedError(`the azure object client for ${this.location}`);
    return new Deadline(this.timeoutMs);
  }

  private blob(key: string, single = false) {
    return (single ? this.clients.single : this.clients.main).getBlockBlobClient(this.root + key);
  }

  /** Creates the container when it does not exist (the factory calls it unless read-only). */
  async ensureContainer(): Promise<void> {
    const deadline = this.deadline();
    try {
      await this.clients.main.createIfNotExists({ abortSignal: deadline.signal });
    } catch (error) {
      // A SAS scoped to the container may not create containers (403) yet use one that exists.
      if (statusOf(error) === 403 && (await this.containerExists().catch(() => false))) return;
      throw storeError("create container", error, this.location, { timeoutMs: this.timeoutMs });
    }
  }

  /** By listing one blob: a container SAS may list but not read container properties. */
  private async containerExists(): Promise<boolean> {
    try {
      const pages = this.clients.main.listBlobsFlat({ abortSignal: this.deadline().signal });
      await pages.byPage({ maxPageSize: 1 }).next();
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  async get(key: string): Promise<StoredObject | undefined> {
    return this.read(key, this.deadline());
  }

  private async read(key: string, deadline: Deadline): Promise<StoredObject | undefined> {
    try {
      const response = await this.blob(key).download(0, undefined, { abortSignal: deadline.signal });
      const body = await readAll(response.readableStreamBody as Readable | undefined, deadline.signal);
      if (response.etag === undefined) throw new Error(`no ETag in the answer for ${key}`);
      // Azure always sends Date; the local clock stands in only for a proxy that strips it.
      return { body, etag: response.etag, serverTime: response.date ?? new Date() };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw storeError(`get ${key}`, error, this.location, { timeoutMs: deadline.ms });
    }
  }

  async put(key: string, body: Buffer | string, condition?: WriteCondition): Promise<WriteResult> {
    const bytes = typeof body === "string" ? Buffer.from(body) : body;
    const deadline = this.deadline();
    if (condition !== undefined) {
      return conditionalPut(
        {
          upload: async (sent, signal) => {
            const r = await this.blob(key, true).upload(bytes, bytes.length, {
              conditions: sent,
              abortSignal: signal,
            });
            return { etag: r.etag ?? "", serverTime: r.date ?? new Date() };
          },
          read: (d) => this.read(key, d),
          where: `${this.location} ${key}`,
        },
        bytes,
        condition,
        deadline,
      );
    }
    try {
      const r = await this.blob(key).upload(bytes, bytes.length, { abortSignal: deadline.signal });
      return { ok: true, etag: r.etag ?? "", serverTime: r.date ?? new Date() };
    } catch (error) {
      throw storeError(`put ${key}`, error, this.location, { maybeCommitted: true, timeoutMs: deadline.ms });
    }
  }

  async delete(key: string): Promise<boolean> {
    const deadline = this.deadline();
    try {
      await this.blob(key).delete({ abortSignal: deadline.signal });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw storeError(`delete ${key}`, error, this.location, {
        maybeCommitted: true,
        timeoutMs: deadline.ms,
      });
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    const unique = [...new Set(keys)];
    if (unique.length === 0) return;
    if (unique.length === 1) {
      await this.delete(unique[0] as string);
      return;
    }
    const batches: string[][] = [];
    for (let i = 0; i < unique.length; i += BATCH_SIZE) batches.push(unique.slice(i, i + BATCH_SIZE));
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const batch = batches[next++] as string[];
        await this.deleteBatch(batch);
      }
    };
    await Promise.all(Array.from({ length: Math.min(BATCH_CONCURRENCY, batches.length) }, worker));
  }

  /** One blob batch; a blob already gone is fine, any other per-blob failure throws. */
  private async deleteBatch(keys: string[]): Promise<void> {
    const deadline = this.deadline();
    let response: BlobBatchDeleteBlobsResponse;
    try {
      const batch = this.clients.main.getBlobBatchClient();
      const blobs = keys.map((key) => this.clients.main.getBlobClient(this.root + key));
      response = await batch.deleteBlobs(blobs, { abortSignal: deadline.signal });
    } catch (error) {
      throw storeError(`delete ${keys.length} objects`, error, this.location, {
        maybeCommitted: true,
        timeoutMs: deadline.ms,
      });
    }
    const failed = response.subResponses.filter((s) => s.status >= 300 && s.status !== 404);
    if (failed.length === 0) return;
    const name = (s: (typeof failed)[number]) => {
      const url = s._request?.url ?? "";
      const marker = `/${this.container}/${this.root}`;
      const at = url.indexOf(marker);
      return at < 0 ? url : decodeURIComponent(url.slice(at + marker.length).split("?")[0] ?? "");
    };
    const detail = failed
      .slice(0, 5)
      .map((s) => `${name(s)}: ${s.status} ${s.errorCode ?? s.statusMessage}`)
      .join("; ");
    const cause = new Error(`${failed.length} of ${keys.length} deletes failed: ${detail}`);
    const busy = failed.every((s) => isServerBusy({ statusCode: s.status }));
    throw busy
      ? storeError(`delete ${keys.length} objects`, Object.assign(cause, { statusCode: 503 }), this.location)
      : new StoreOperationError(STRATEGY, `delete ${keys.length} objects (${this.location})`, { cause });
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    this.deadline(); // ClosedError after close(), before anything is sent
    const context = {
      client: this.clients.main,
      root: this.root,
      listStartFrom: this.listStartFrom,
      where: this.location,
    };
    return listPage(context, prefix, options, () => this.deadline());
  }

  /**
   * Writes a random key create-only twice (the second must be refused), then compare-and-swaps
   * it with a wrong ETag (must be refused), and deletes it. Raw single tries: a server that
   * overwrites must not be excused by the unknown-outcome logic.
   */
  async probeConditions(): Promise<void> {
    const key = `cairn-probe-${randomBytes(8).toString("hex")}`;
    const deadline = this.deadline();
    const refused = async (condition: WriteCondition, body: string, feature: string) => {
      try {
        await this.blob(key, true).upload(body, body.length, {
          conditions: condition,
          abortSignal: deadline.signal,
        });
      } catch (error) {
        if (isConditionFailure(error, condition)) return;
        if (statusOf(error) === 501) throw this.unsupported(feature);
        throw storeError("probe conditional writes", error, this.location, { timeoutMs: deadline.ms });
      }
      throw this.unsupported(feature);
    };
    let failure: unknown;
    try {
      try {
        await this.blob(key, true).upload("1", 1, {
          conditions: { ifNoneMatch: "*" },
          abortSignal: deadline.signal,
        });
      } catch (error) {
        if (statusOf(error) === 501) throw this.unsupported("create-only writes (If-None-Match: *)");
        throw storeError("probe conditional writes", error, this.location, { timeoutMs: deadline.ms });
      }
      await refused({ ifNoneMatch: "*" }, "2", "create-only writes (If-None-Match: *)");
      await refused({ ifMatch: quoteEtag("0x0000000000000000") }, "3", "compare-and-swap writes (If-Match)");
    } catch (error) {
      failure = error;
    }
    try {
      await this.delete(key);
    } catch (error) {
      // The probe's own failure is the one to report; the leftover key is then garbage.
      if (failure === undefined) throw error;
    }
    if (failure !== undefined) throw failure;
  }

  private unsupported(feature: string): StoreUnsupportedError {
    return new StoreUnsupportedError(
      STRATEGY,
      this.endpoint,
      feature,
      "cairn needs it to keep two writers from overwriting each other; use another server, or open the store with singleWriter: true if only one process ever writes to it",
    );
  }

  async close(): Promise<void> {
    // The SDK shares one keep-alive HTTP agent per process and holds nothing per client.
    this.closed = true;
  }
}

/**
 * Validates the options, loads the SDK (`MissingDriverError` when absent), and creates the
 * container unless `readOnly` (or it exists). `load` replaces the SDK import in tests.
 */
export async function createAzureObjects(
  options: AzureObjectsFactoryOptions,
  load?: () => Promise<unknown>,
): Promise<AzureObjects> {
  const { readOnly = false, ...rest } = options;
  const settings = parseAzureObjectsOptions(rest);
  const sdk = await loadAzureSdk(load);
  const clients = containerClients(sdk, settings);
  const objects = new AzureObjects(
    clients,
    settings.container,
    settings.prefix,
    settings.requestTimeoutMs,
    settings.listStartFrom,
  );
  if (!readOnly) await objects.ensureContainer();
  return objects;
}
