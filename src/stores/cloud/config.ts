/**
 * Configuration of the object-storage stores (`s3`, `azure`): validation (every problem reported
 * at once) and the URL forms `s3://bucket/prefix?endpoint=…` and `azblob://container/prefix`.
 * Kept apart from the stores so the registry can validate without loading either SDK.
 */
import { InvalidConfigError } from "../../core/errors.js";
import { AZURE_OBJECTS_OPTIONS, parseAzureObjectsOptions } from "../azure/config.js";
import { resolveS3Options, S3_OBJECTS_OPTIONS, type S3ObjectsOptions } from "../s3/config.js";

/** Option names of the `s3` store: the client's, and `singleWriter`. */
export const S3_OPTIONS = [...S3_OBJECTS_OPTIONS, "singleWriter"] as const;

/** Option names of the `azure` store: the client's, and `singleWriter`. */
export const AZURE_OPTIONS = [...AZURE_OBJECTS_OPTIONS, "singleWriter"] as const;

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

/** Validates an `s3` configuration: the client's options, and `singleWriter`. */
export function parseS3Config(config: Record<string, unknown>): { singleWriter: boolean } {
  return withSingleWriter(config, (client) => resolveS3Options(client as unknown as S3ObjectsOptions));
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
  return withSingleWriter(config, (client) => parseAzureObjectsOptions(client));
}

/** Checks `singleWriter` and the rest with the client's own validation, every problem at once. */
function withSingleWriter(
  config: Record<string, unknown>,
  validate: (client: Record<string, unknown>) => unknown,
): { singleWriter: boolean } {
  const { singleWriter, ...client } = config;
  const problems: string[] = [];
  if (singleWriter !== undefined && typeof singleWriter !== "boolean")
    problems.push("singleWriter must be a boolean");
  try {
    validate(client);
  } catch (error) {
    if (!(error instanceof InvalidConfigError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0) throw new InvalidConfigError(problems);
  return { singleWriter: singleWriter === true };
}
