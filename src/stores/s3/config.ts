/**
 * Options of the S3 object client and their validation (every problem reported at once), kept
 * apart from the client so a configuration can be checked without loading the SDK.
 */
import { InvalidConfigError } from "../../core/errors.js";
import { unknownOptionsProblem } from "../../core/options.js";

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

/** Option names the client accepts. */
export const S3_OBJECTS_OPTIONS = [
  "bucket",
  "prefix",
  "region",
  "endpoint",
  "forcePathStyle",
  "credentials",
  "client",
  "requestTimeoutMs",
  "maxAttempts",
] as const;

// Loose on purpose: S3-compatible services accept more than AWS's own rule (underscores, capitals).
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;
const httpUrl = (v: unknown) => typeof v === "string" && /^https?:\/\/[^/]+/.test(v) && URL.canParse(v);

/** The prefix without surrounding slashes; a problem when a segment is empty, `.` or `..`. */
export function checkPrefix(value: unknown, problems: string[]): string {
  if (value === undefined) return "";
  if (typeof value !== "string") {
    problems.push("prefix must be a string");
    return "";
  }
  const prefix = value.replace(/^\/+|\/+$/g, "");
  if (prefix === "") return "";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (prefix.length > 512 || /[\u0000-\u001f\u007f\\]/.test(prefix)) {
    problems.push("prefix must be at most 512 characters, without control characters or backslashes");
  } else if (prefix.split("/").some((s) => s === "" || s === "." || s === "..")) {
    problems.push(`prefix "${value}" has an empty, "." or ".." segment`);
  }
  return prefix;
}

/** Validates the options; throws `InvalidConfigError` listing every problem. */
export function resolveS3Options(options: S3ObjectsOptions): ResolvedS3Options {
  const problems: string[] = [];
  const o = options as unknown as Record<string, unknown>;
  const unknown = unknownOptionsProblem("the s3 store", o, S3_OBJECTS_OPTIONS);
  if (unknown !== undefined) problems.push(unknown);
  if (typeof o.bucket !== "string" || !BUCKET.test(o.bucket)) {
    problems.push(
      `bucket must be a bucket name (1 to 255 letters, digits, ".", "_" or "-"), not ${JSON.stringify(o.bucket)}`,
    );
  }
  const prefix = checkPrefix(o.prefix, problems);
  if (o.region !== undefined && (typeof o.region !== "string" || o.region === ""))
    problems.push("region must be a non-empty string");
  if (o.endpoint !== undefined && !httpUrl(o.endpoint))
    problems.push(`endpoint must be an http:// or https:// URL, not ${JSON.stringify(o.endpoint)}`);
  if (o.forcePathStyle !== undefined && typeof o.forcePathStyle !== "boolean")
    problems.push("forcePathStyle must be a boolean");
  if (o.requestTimeoutMs !== undefined && !isInt(o.requestTimeoutMs, 1, 3_600_000))
    problems.push(`requestTimeoutMs must be an integer from 1 to 3600000, not ${String(o.requestTimeoutMs)}`);
  if (o.maxAttempts !== undefined && !isInt(o.maxAttempts, 1, 20))
    problems.push(`maxAttempts must be an integer from 1 to 20, not ${String(o.maxAttempts)}`);
  if (o.credentials !== undefined) {
    const k = o.credentials;
    const ok =
      isObject(k) &&
      typeof k.accessKeyId === "string" &&
      k.accessKeyId !== "" &&
      typeof k.secretAccessKey === "string" &&
      k.secretAccessKey !== "" &&
      (k.sessionToken === undefined || typeof k.sessionToken === "string");
    if (!ok)
      problems.push(
        "credentials must be { accessKeyId, secretAccessKey, sessionToken? } with non-empty strings",
      );
  }
  if (o.client !== undefined) {
    if (!isObject(o.client) || typeof o.client.send !== "function")
      problems.push("client must be an S3Client from @aws-sdk/client-s3");
    const extra = ["region", "endpoint", "forcePathStyle", "credentials", "maxAttempts"].filter(
      (k) => o[k] !== undefined,
    );
    if (extra.length > 0)
      problems.push(`client is given, so ${extra.join(", ")} must not be (set them on the client)`);
  }
  if (problems.length > 0) throw new InvalidConfigError(problems);
  return {
    ...options,
    keyPrefix: prefix === "" ? "" : `${prefix}/`,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
  };
}
