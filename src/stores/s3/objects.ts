/**
 * `ObjectClient` over `@aws-sdk/client-s3`, for AWS S3 and S3-compatible servers (Ceph RGW,
 * MinIO, R2). Hides the servers' quirks measured on RGW 16: a conditional put that answers 500
 * (or 412 after an SDK retry) has an unknown outcome and is resolved by reading the key back;
 * `If-Match` is sent quoted, and unquoted if the server refuses that form; a missing key may
 * answer 412 or 404 to `If-Match` (both = condition failed).
 */
import { randomBytes } from "node:crypto";
import type * as S3 from "@aws-sdk/client-s3";
import { StoreOperationError, StoreUnsupportedError } from "../../core/errors.js";
import { loadDriver } from "../driver.js";
import type {
  ListOptions,
  ListPage,
  ObjectClient,
  StoredObject,
  WriteCondition,
  WriteResult,
} from "../object/objects.js";
import { type ResolvedS3Options, resolveS3Options, type S3ObjectsOptions } from "./config.js";
import { bareEtag, describeFailure, quotedEtag, toStoreError } from "./errors.js";

type S3Module = typeof S3;

type Handler = (args: unknown) => Promise<{ response: unknown; output: unknown }>;
/** The part of an SDK command's middleware stack used to read the response headers. */
interface Stack {
  add(
    middleware: (next: Handler) => Handler,
    options: { step: "deserialize"; name: string; override?: boolean },
  ): void;
}
/** Any SDK command. */
interface Sendable {
  middlewareStack: unknown;
}

/** Loads the SDK; `MissingDriverError("s3", "@aws-sdk/client-s3")` when it is not installed. */
function loadS3Sdk(): Promise<S3Module> {
  return loadDriver(
    "s3",
    "@aws-sdk/client-s3",
    () => import("@aws-sdk/client-s3"),
    (m) => (typeof m.S3Client === "function" ? (m as unknown as S3Module) : undefined),
  );
}

/** Opens an S3 object client (loads the SDK lazily; nothing is sent until the first call). */
export async function createS3Objects(options: S3ObjectsOptions): Promise<S3Objects> {
  const resolved = resolveS3Options(options);
  const sdk = await loadS3Sdk();
  let client = resolved.client as S3.S3Client | undefined;
  const owned = client === undefined;
  if (client === undefined) {
    client = new sdk.S3Client({
      region: resolved.region ?? (resolved.endpoint !== undefined ? "us-east-1" : undefined),
      endpoint: resolved.endpoint,
      forcePathStyle: resolved.forcePathStyle,
      credentials: resolved.credentials,
      maxAttempts: resolved.maxAttempts,
      // Checksums only where S3 requires them (DeleteObjects): older S3 look-alikes reject the
      // flexible-checksum headers, and the bodies are small JSON verified by cairn anyway.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // Keep-alive sockets (the SDK's agents are keep-alive; Node's http client sets
      // TCP_NODELAY itself). The ~46 ms GETs seen on RGW were the server's Nagle, not ours:
      // see docs/notes/s3.md.
      requestHandler: {
        httpAgent: { keepAlive: true, maxSockets: 64 },
        httpsAgent: { keepAlive: true, maxSockets: 64 },
        connectionTimeout: resolved.requestTimeoutMs,
        requestTimeout: resolved.requestTimeoutMs,
        throwOnRequestTimeout: true,
      },
    });
  }
  return S3Objects.create(sdk, client, owned, resolved);
}

/**
 * A bucket under a prefix, as an `ObjectClient`. Create it with {@link createS3Objects}. The
 * constructor is private so cairn's published types never mention the SDK's (an optional peer).
 */
export class S3Objects implements ObjectClient {
  readonly location: string;
  private readonly bucket: string;
  private readonly keyPrefix: string;
  private readonly timeoutMs: number;
  /** Which `If-Match` form the server accepted (undefined until one worked; servers differ). */
  private ifMatchQuoted: boolean | undefined;

  /** @internal Used by {@link createS3Objects}. */
  static create(sdk: unknown, client: unknown, owned: boolean, options: ResolvedS3Options): S3Objects {
    return new S3Objects(sdk as S3Module, client as S3.S3Client, owned, options);
  }

  private constructor(
    private readonly sdk: S3Module,
    private readonly client: S3.S3Client,
    private readonly owned: boolean,
    options: ResolvedS3Options,
  ) {
    this.bucket = options.bucket;
    this.keyPrefix = options.keyPrefix;
    this.timeoutMs = options.requestTimeoutMs;
    const where = options.endpoint ?? "aws";
    this.location = `s3://${this.bucket}/${this.keyPrefix.replace(/\/$/, "")} (${where})`;
  }

  /** The server endpoint, for messages. */
  get endpoint(): string {
    return this.location.replace(/^.* \((.*)\)$/, "$1");
  }

  async get(key: string): Promise<StoredObject | undefined> {
    try {
      const { output, serverTime } = await this.send<S3.GetObjectCommandOutput>(
        new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }),
      );
      const body = Buffer.from((await output.Body?.transformToByteArray()) ?? new Uint8Array());
      return { body, etag: bareEtag(output.ETag), serverTime };
    } catch (error) {
      const { status, code } = describeFailure(error);
      // A missing bucket is a 404 too, but not "no such object": it must not read as empty.
      if (code === "NoSuchKey" || (status === 404 && code !== "NoSuchBucket")) return undefined;
      throw toStoreError(error, this.location, `get ${key}`, false);
    }
  }

  async put(key: string, body: Buffer | string, condition?: WriteCondition): Promise<WriteResult> {
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    if (condition === undefined) {
      try {
        return await this.putOnce(key, bytes, {});
      } catch (error) {
        throw toStoreError(error, this.location, `put ${key}`, true);
      }
    }
    if ("ifNoneMatch" in condition) return this.conditionalPut(key, bytes, { IfNoneMatch: "*" });
    const form = (quoted: boolean) => (quoted ? quotedEtag(condition.ifMatch) : bareEtag(condition.ifMatch));
    const known = this.ifMatchQuoted;
    if (known !== undefined) return this.conditionalPut(key, bytes, { IfMatch: form(known) });
    // Until one form has worked: a refusal may mean a stale ETag or the wrong form (RGW 16
    // refuses the quoted one, RFC 7232 wants it). The other form tells: a stale ETag fails both.
    const quoted = await this.conditionalPut(key, bytes, { IfMatch: form(true) });
    if (quoted.ok) {
      this.ifMatchQuoted = true;
      return quoted;
    }
    const bare = await this.conditionalPut(key, bytes, { IfMatch: form(false) });
    if (bare.ok) this.ifMatchQuoted = false;
    return bare;
  }

  async delete(key: string): Promise<boolean> {
    // DeleteObject answers 204 whether or not the key existed: a HEAD first tells which.
    let existed = true;
    try {
      await this.send(new this.sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
    } catch (error) {
      const { status, code } = describeFailure(error);
      if (status === 404 || code === "NotFound" || code === "NoSuchKey") existed = false;
      else throw toStoreError(error, this.location, `delete ${key}`, false);
    }
    if (!existed) return false;
    try {
      await this.send(new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
      return true;
    } catch (error) {
      throw toStoreError(error, this.location, `delete ${key}`, true);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += 1000) {
      const batch = keys.slice(start, start + 1000);
      let output: S3.DeleteObjectsCommandOutput;
      try {
        ({ output } = await this.send<S3.DeleteObjectsCommandOutput>(
          new this.sdk.DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((key) => ({ Key: this.full(key) })), Quiet: true },
          }),
        ));
      } catch (error) {
        throw toStoreError(error, this.location, `deleteMany (${batch.length} keys)`, true);
      }
      const failed = (output.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
      if (failed.length > 0) {
        const sample = failed
          .slice(0, 3)
          .map((e) => `${e.Key}: ${e.Code} ${e.Message ?? ""}`.trim())
          .join("; ");
        throw new StoreOperationError("s3", `deleteMany (${this.location})`, {
          cause: new Error(`${failed.length} of ${batch.length} keys not deleted: ${sample}`),
        });
      }
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    try {
      const { output } = await this.send<S3.ListObjectsV2CommandOutput>(
        new this.sdk.ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.full(prefix),
          Delimiter: options.delimiter,
          MaxKeys: options.maxKeys,
          StartAfter: options.startAfter === undefined ? undefined : this.full(options.startAfter),
          ContinuationToken: options.continuation,
        }),
      );
      const strip = (k: string) => k.slice(this.keyPrefix.length);
      const page: ListPage = {
        keys: (output.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [strip(o.Key)])),
        prefixes: (output.CommonPrefixes ?? []).flatMap((p) =>
          p.Prefix === undefined ? [] : [strip(p.Prefix)],
        ),
      };
      if (output.IsTruncated && output.NextContinuationToken)
        page.continuation = output.NextContinuationToken;
      return page;
    } catch (error) {
      throw toStoreError(error, this.location, `list ${prefix}`, false);
    }
  }

  async probeConditions(): Promise<void> {
    const key = `cairn-probe-${randomBytes(8).toString("hex")}.tmp`;
    const unsupported = () =>
      new StoreUnsupportedError(
        "s3",
        this.endpoint,
        "create-only writes (If-None-Match: *)",
        "use a server that enforces conditional writes, or set singleWriter: true (unsafe with two writers)",
      );
    try {
      for (const attempt of [1, 2]) {
        let result: WriteResult;
        try {
          result = await this.conditionalPut(key, Buffer.from(`probe ${attempt}`), { IfNoneMatch: "*" });
        } catch (error) {
          const { status, code } = describeFailure((error as { cause?: unknown }).cause ?? error);
          if (status === 501 || code === "NotImplemented") throw unsupported();
          throw error;
        }
        if (attempt === 1 && !result.ok)
          throw new StoreOperationError("s3", `probeConditions (${this.location})`, {
            cause: new Error(`a create-only write of the new random key ${key} was refused`),
          });
        if (attempt === 2 && result.ok) throw unsupported();
      }
    } catch (error) {
      // The probe's verdict matters more than its cleanup: delete best effort, keep this error.
      await this.delete(key).catch(() => undefined);
      throw error;
    }
    await this.delete(key);
  }

  async close(): Promise<void> {
    if (this.owned) this.client.destroy();
  }

  private full(key: string): string {
    return this.keyPrefix + key;
  }

  private async putOnce(
    key: string,
    bytes: Buffer,
    condition: { IfNoneMatch?: string; IfMatch?: string },
  ): Promise<WriteResult & { ok: true }> {
    const { output, serverTime } = await this.send<S3.PutObjectCommandOutput>(
      new this.sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.full(key), Body: bytes, ...condition }),
    );
    return { ok: true, etag: bareEtag(output.ETag), serverTime };
  }

  /**
   * A conditional put. 412 (or 404 for `If-Match` on a missing key) = condition failed, unless
   * the SDK had retried: then an earlier attempt may have written, and so may a 500 or an
   * exhausted 503 (RGW answers 500 to racing conditional puts). Those are resolved by reading
   * the key back: success exactly when it now holds our bytes. (Identical bytes written by
   * another writer would count as ours; the store's objects carry nonces or unique keys.)
   */
  private async conditionalPut(
    key: string,
    bytes: Buffer,
    condition: { IfNoneMatch?: string; IfMatch?: string },
  ): Promise<WriteResult> {
    try {
      return await this.putOnce(key, bytes, condition);
    } catch (error) {
      const { status, code, attempts } = describeFailure(error);
      const refused = status === 412 || (status === 404 && condition.IfMatch !== undefined);
      if (refused && attempts <= 1) return { ok: false };
      const unknown =
        refused ||
        code === "ConditionalRequestConflict" ||
        (status !== undefined && status >= 500 && status !== 501);
      if (!unknown) throw toStoreError(error, this.location, `put ${key}`, true);
      return this.resolveByRead(key, bytes, error);
    }
  }

  private async resolveByRead(key: string, bytes: Buffer, original: unknown): Promise<WriteResult> {
    let current: StoredObject | undefined;
    try {
      current = await this.get(key);
    } catch (error) {
      // Cannot tell whether the write landed: report it as maybe committed.
      throw toStoreError(
        original,
        this.location,
        `put ${key} (outcome unknown; read-back failed: ${String(error)})`,
        true,
      );
    }
    if (current?.body.equals(bytes)) return { ok: true, etag: current.etag, serverTime: current.serverTime };
    return { ok: false };
  }

  /** Sends a command with the operation deadline, capturing the server's `Date` header. */
  private async send<T>(command: Sendable): Promise<{ output: T; serverTime: Date }> {
    let date: string | undefined;
    (command.middlewareStack as Stack).add(
      (next) => async (args) => {
        const result = await next(args);
        const headers = (result.response as { headers?: Record<string, string> } | undefined)?.headers;
        date = headers?.date ?? headers?.Date;
        return result;
      },
      { step: "deserialize", name: "cairnServerTime", override: true },
    );
    const output = (await this.client.send(command as never, {
      abortSignal: AbortSignal.timeout(this.timeoutMs),
    })) as T;
    const parsed = date === undefined ? Number.NaN : Date.parse(date);
    return { output, serverTime: Number.isNaN(parsed) ? new Date() : new Date(parsed) };
  }
}
