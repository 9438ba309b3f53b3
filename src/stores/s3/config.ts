/**
 * Options of the S3 object client and their validation (every problem reported at once), kept
 * apart from the client so a configuration can be checked without loading the SDK.
 */
import { InvalidConfigError } from "../../core/errors.js";

/** Static credentials; without them the SDK's default chain (env, profile, IMDS...) is used. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Options of {@link createS3Objects}. */
export interface S3ObjectsOptions {
  /** The bucket (must exist). */
  bucket: string;
  /** Key prefix inside the bucket (`a/b` → keys `a/b/...`); default none. */
  prefix?: string;
  /** Region; default the SDK's chain, or `us-east-1` when an `endpoint` is given. */
  region?: string;
  /** Endpoint URL of an S3-compatible server (`http://127.0.0.1:7480`); default AWS. */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`), which most S3 look-alikes need. */
  forcePathStyle?: boolean;
  /** Static credentials; default the SDK's credential chain. */
  credentials?: S3Credentials;
  /** A ready `S3Client` (from `@aws-sdk/client-s3`); the caller owns it and closes it. */
  client?: unknown;
  /** Deadline of one operation including the SDK's retries, in ms; default 10,000. */
  requestTimeoutMs?: number;
  /** Attempts per request of the SDK's retry policy (throttling, 5xx); default the SDK's (3). */
  maxAttempts?: number;
}

/** Default deadline of one operation. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** The validated options, prefix normalized to `""` or `a/b/`. */
export interface ResolvedS3Options extends S3ObjectsOptions {
  keyPrefix: string;
  requestTimeoutMs: number;
}

/** Validates the options; throws `InvalidConfigError` listing every problem. */
export function resolveS3Options(options: S3ObjectsOptions): ResolvedS3Options {
  const problems: string[] = [];
  if (typeof options.bucket !== "string" || options.bucket.length === 0)
    problems.push("s3: bucket is required (a non-empty string)");
  if (options.prefix !== undefined && typeof options.prefix !== "string")
    problems.push("s3: prefix must be a string");
  if (options.endpoint !== undefined) {
    try {
      new URL(options.endpoint);
    } catch {
      problems.push(`s3: endpoint ${JSON.stringify(options.endpoint)} is not a URL`);
    }
  }
  const timeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (!Number.isFinite(timeout) || timeout <= 0)
    problems.push("s3: requestTimeoutMs must be a positive number");
  if (
    options.maxAttempts !== undefined &&
    (!Number.isInteger(options.maxAttempts) || options.maxAttempts < 1)
  )
    problems.push("s3: maxAttempts must be an integer of at least 1");
  const credentials = options.credentials;
  if (
    credentials !== undefined &&
    (typeof credentials.accessKeyId !== "string" || typeof credentials.secretAccessKey !== "string")
  )
    problems.push("s3: credentials need accessKeyId and secretAccessKey");
  if (options.client !== undefined && typeof (options.client as { send?: unknown }).send !== "function")
    problems.push("s3: client must be an S3Client from @aws-sdk/client-s3");
  if (problems.length > 0) throw new InvalidConfigError(problems);
  const trimmed = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
  return { ...options, keyPrefix: trimmed === "" ? "" : `${trimmed}/`, requestTimeoutMs: timeout };
}
