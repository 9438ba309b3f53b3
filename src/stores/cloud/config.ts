/**
 * Configuration of the object-storage stores (`s3`, `azure`): validation (every problem reported
 * at once) and the URL forms `s3://bucket/prefix?endpoint=…` and `azblob://container/prefix`.
 * Kept apart from the stores so the registry can validate without loading either SDK.
 */
import { InvalidConfigError } from "../../core/errors.js";
import { unknownOptionsProblem } from "../../core/options.js";
import { AZURE_OBJECTS_OPTIONS, parseAzureObjectsOptions } from "../azure/config.js";

/** Option names of the `s3` store. */
export const S3_OPTIONS = [
  "bucket",
  "prefix",
  "region",
  "endpoint",
  "forcePathStyle",
  "credentials",
  "client",
  "singleWriter",
  "requestTimeoutMs",
  "maxAttempts",
] as const;

/** Option names of the `azure` store: the client's, and `singleWriter`. */
export const AZURE_OPTIONS = [...AZURE_OBJECTS_OPTIONS, "singleWriter"] as const;

/** Static S3 credentials; without them the SDK's default chain (environment, profile, role) is used. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** A validated `s3` configuration. */
export interface S3Settings {
  bucket: string;
  /** The key prefix without leading or trailing `/`; empty for the bucket's root. */
  prefix: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  credentials?: S3Credentials;
  /** A ready `S3Client`; the caller keeps ownership. */
  client?: unknown;
  singleWriter: boolean;
  requestTimeoutMs: number;
  maxAttempts: number;
}

/** Request timeout when none is configured: an unreachable endpoint fails within it. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Attempts per request (the SDK's retry policy: throttling, 5xx, timeouts) when none is configured. */
export const DEFAULT_MAX_ATTEMPTS = 3;
/** Where an `azblob://` URL takes its connection string from. */
export const AZURE_CONNECTION_ENV = "AZURE_STORAGE_CONNECTION_STRING";

const S3_URL_PARAMS = [
  "endpoint",
  "region",
  "forcePathStyle",
  "singleWriter",
  "requestTimeoutMs",
  "maxAttempts",
];
const AZURE_URL_PARAMS = ["singleWriter", "requestTimeoutMs", "listStartFrom"];
// Loose on purpose: S3-compatible services accept more than AWS's own rule (underscores, capitals).
const BUCKET = /^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;

/** The prefix without surrounding slashes; a problem when a segment is empty, `.` or `..`. */
function checkPrefix(value: unknown, problems: string[]): string {
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

/** URL query parameters as config values: booleans and integers from their text. */
function queryParams(u: URL, known: string[], problems: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, text] of u.searchParams) {
    if (!known.includes(name)) {
      problems.push(`url has an unknown query parameter "${name}" (known: ${known.join(", ")})`);
    } else if (name === "forcePathStyle" || name === "singleWriter" || name === "listStartFrom") {
      if (text === "true" || text === "false") out[name] = text === "true";
      else problems.push(`url parameter ${name} must be true or false, not "${text}"`);
    } else if (name === "requestTimeoutMs" || name === "maxAttempts") {
      out[name] = /^\d{1,9}$/.test(text) ? Number(text) : text;
    } else out[name] = text;
  }
  return out;
}

/** `s3://bucket/prefix?endpoint=…&region=…&forcePathStyle=true` as a configuration. */
export function s3ConfigFromUrl(url: string): Record<string, unknown> {
  const problems: string[] = [];
  const u = parseUrl(url, "s3:", "s3://bucket/prefix", problems);
  const config: Record<string, unknown> = u
    ? {
        bucket: decodeURIComponent(u.hostname),
        prefix: decodeURIComponent(u.pathname),
        ...queryParams(u, S3_URL_PARAMS, problems),
      }
    : {};
  if (problems.length > 0) throw new InvalidConfigError(problems);
  return config;
}

/** `azblob://container/prefix` as a configuration; the connection string comes from the environment. */
export function azureConfigFromUrl(url: string): Record<string, unknown> {
  const problems: string[] = [];
  const u = parseUrl(url, "azblob:", "azblob://container/prefix", problems);
  const connectionString = process.env[AZURE_CONNECTION_ENV];
  if (u && !connectionString) {
    problems.push(`azblob:// URLs take the connection string from ${AZURE_CONNECTION_ENV}, which is not set`);
  }
  const config: Record<string, unknown> = u
    ? {
        container: decodeURIComponent(u.hostname),
        prefix: decodeURIComponent(u.pathname),
        connectionString,
        ...queryParams(u, AZURE_URL_PARAMS, problems),
      }
    : {};
  if (problems.length > 0) throw new InvalidConfigError(problems);
  return config;
}

function parseUrl(url: string, protocol: string, form: string, problems: string[]): URL | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    problems.push(`"${url}" is not a valid URL (expected ${form})`);
    return undefined;
  }
  if (u.protocol !== protocol) problems.push(`url must start with ${protocol}//, not ${u.protocol}//`);
  if (u.username || u.password || u.port) {
    problems.push(`url must be ${form}: no user, password or port (credentials never go in a URL)`);
  }
  if (!u.hostname) problems.push(`url must name the ${protocol === "s3:" ? "bucket" : "container"}: ${form}`);
  return u;
}

function commonSettings(c: Record<string, unknown>, problems: string[]) {
  if (c.singleWriter !== undefined && typeof c.singleWriter !== "boolean")
    problems.push("singleWriter must be a boolean");
  if (c.requestTimeoutMs !== undefined && !isInt(c.requestTimeoutMs, 1, 3_600_000))
    problems.push(`requestTimeoutMs must be an integer from 1 to 3600000, not ${String(c.requestTimeoutMs)}`);
  if (c.maxAttempts !== undefined && !isInt(c.maxAttempts, 1, 20))
    problems.push(`maxAttempts must be an integer from 1 to 20, not ${String(c.maxAttempts)}`);
  return {
    prefix: checkPrefix(c.prefix, problems),
    singleWriter: (c.singleWriter as boolean | undefined) ?? false,
    requestTimeoutMs: (c.requestTimeoutMs as number | undefined) ?? DEFAULT_REQUEST_TIMEOUT_MS,
    maxAttempts: (c.maxAttempts as number | undefined) ?? DEFAULT_MAX_ATTEMPTS,
  };
}

/** Validates an `s3` configuration; throws {@link InvalidConfigError} listing every problem. */
export function parseS3Config(config: Record<string, unknown>): S3Settings {
  const problems: string[] = [];
  const unknown = unknownOptionsProblem("the s3 store", config, S3_OPTIONS);
  if (unknown !== undefined) problems.push(unknown);
  const c = config;
  if (typeof c.bucket !== "string" || !BUCKET.test(c.bucket)) {
    problems.push(
      `bucket must be a bucket name (2 to 255 letters, digits, ".", "_" or "-"), not ${JSON.stringify(c.bucket)}`,
    );
  }
  const common = commonSettings(c, problems);
  if (c.region !== undefined && (typeof c.region !== "string" || c.region === ""))
    problems.push("region must be a non-empty string");
  if (c.endpoint !== undefined) {
    const ok =
      typeof c.endpoint === "string" && /^https?:\/\/[^/]+/.test(c.endpoint) && URL.canParse(c.endpoint);
    if (!ok) problems.push(`endpoint must be an http:// or https:// URL, not ${JSON.stringify(c.endpoint)}`);
  }
  if (c.forcePathStyle !== undefined && typeof c.forcePathStyle !== "boolean")
    problems.push("forcePathStyle must be a boolean");
  if (c.credentials !== undefined) {
    const k = c.credentials;
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
  if (c.client !== undefined) {
    if (!isObject(c.client) || typeof (c.client as { send?: unknown }).send !== "function")
      problems.push("client must be an S3Client from @aws-sdk/client-s3");
    const extra = ["region", "endpoint", "forcePathStyle", "credentials", "maxAttempts"].filter(
      (k) => c[k] !== undefined,
    );
    if (extra.length > 0)
      problems.push(`client is given, so ${extra.join(", ")} must not be (set them on the client)`);
  }
  if (problems.length > 0) throw new InvalidConfigError(problems);
  const settings: S3Settings = { bucket: c.bucket as string, ...common };
  if (c.region !== undefined) settings.region = c.region as string;
  if (c.endpoint !== undefined) settings.endpoint = (c.endpoint as string).replace(/\/+$/, "");
  if (c.forcePathStyle !== undefined) settings.forcePathStyle = c.forcePathStyle as boolean;
  if (c.credentials !== undefined) settings.credentials = c.credentials as S3Credentials;
  if (c.client !== undefined) settings.client = c.client;
  return settings;
}

/** Every problem of a configuration, for validating without opening (empty when fine). */
export function problemsOf(
  parse: (c: Record<string, unknown>) => unknown,
): (c: Record<string, unknown>) => string[] {
  return (config) => {
    try {
      parse(config);
      return [];
    } catch (error) {
      if (error instanceof InvalidConfigError) return [...error.problems];
      throw error;
    }
  };
}

/** Validates an `azure` configuration: the client's options, and `singleWriter`. */
export function parseAzureConfig(config: Record<string, unknown>): { singleWriter: boolean } {
  const { singleWriter, ...client } = config;
  const problems: string[] = [];
  if (singleWriter !== undefined && typeof singleWriter !== "boolean")
    problems.push("singleWriter must be a boolean");
  try {
    parseAzureObjectsOptions(client);
  } catch (error) {
    if (!(error instanceof InvalidConfigError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0) throw new InvalidConfigError(problems);
  return { singleWriter: singleWriter === true };
}
