/**
 * Options of the Azure Blob object client: validation (every problem reported at once), the
 * normalized prefix and the location string. Kept apart from the client so a configuration can be
 * checked without loading `@azure/storage-blob`. The option types are structural so cairn's
 * public types never need the SDK installed.
 */
import { InvalidConfigError } from "../../core/errors.js";
import { unknownOptionsProblem } from "../../core/options.js";

/** A credential the SDK accepts: a `TokenCredential` (Entra ID) or a `StorageSharedKeyCredential`. */
export type AzureCredential =
  | { getToken(scopes: string | string[], options?: unknown): Promise<unknown> }
  | { readonly accountName: string; computeHMACSHA256(stringToSign: string): string };

/** The part of an `@azure/storage-blob` `ContainerClient` cairn checks; the rest is used as the SDK's. */
export interface AzureContainerClientLike {
  readonly url: string;
  readonly containerName: string;
  readonly credential: unknown;
  getBlockBlobClient(name: string): unknown;
}

/** Options of the Azure Blob object client. */
export interface AzureObjectsOptions {
  /** The container; created when missing unless `readOnly`. Optional with `containerClient`. */
  container?: string;
  /** Key prefix inside the container (`a/b` → blobs `a/b/<key>`); default none. */
  prefix?: string;
  /** A storage connection string (`AZURE_STORAGE_CONNECTION_STRING`, `UseDevelopmentStorage=true`). */
  connectionString?: string;
  /** `https://<account>.blob.core.windows.net` (a SAS in its query is allowed), with `credential`. */
  accountUrl?: string;
  /** A `TokenCredential` or `StorageSharedKeyCredential`; none with a SAS `accountUrl`. */
  credential?: AzureCredential;
  /** A ready `ContainerClient`; the caller keeps ownership. */
  containerClient?: AzureContainerClientLike;
  /** Every operation, the SDK's retries included, ends within this (ms); default 10,000. */
  requestTimeoutMs?: number;
  /**
   * Whether `list` sends `startFrom` (service version 2026-02-06 and later, azurite 3.37); default
   * true. Off, `startAfter` is emulated by listing from the prefix and skipping: one extra page
   * per `maxKeys` keys before it.
   */
  listStartFrom?: boolean;
}

/** Option names the client accepts. */
export const AZURE_OBJECTS_OPTIONS = [
  "container",
  "prefix",
  "connectionString",
  "accountUrl",
  "credential",
  "containerClient",
  "requestTimeoutMs",
  "listStartFrom",
] as const;

/** Default of `requestTimeoutMs`. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** How the client reaches the container. */
export type AzureConnection =
  | { kind: "connectionString"; connectionString: string }
  | { kind: "accountUrl"; accountUrl: string; credential?: AzureCredential }
  | { kind: "containerClient"; containerClient: AzureContainerClientLike };

/** A validated configuration. */
export interface AzureObjectsSettings {
  container: string;
  /** Normalized: no leading or trailing `/`; "" for none. */
  prefix: string;
  connection: AzureConnection;
  requestTimeoutMs: number;
  listStartFrom: boolean;
}

const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/;

/** Azure's container naming rule, as a sentence, or undefined when `name` follows it. */
export function containerNameProblem(name: string): string | undefined {
  if (name === "$root" || name === "$web") return undefined;
  return CONTAINER_NAME.test(name)
    ? undefined
    : `container ${JSON.stringify(name)} is not a valid Azure container name (3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit)`;
}

/** `a/b/` → `a/b`; undefined (with a problem) for a prefix with an empty segment. */
function normalizePrefix(prefix: string, problems: string[]): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, "");
  if (trimmed.split("/").some((segment) => segment === "") && trimmed !== "") {
    problems.push(`prefix ${JSON.stringify(prefix)} has an empty path segment (//)`);
  }
  return trimmed;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Validates the options; throws {@link InvalidConfigError} listing every problem. */
export function parseAzureObjectsOptions(options: AzureObjectsOptions): AzureObjectsSettings {
  const problems: string[] = [];
  const unknown = unknownOptionsProblem("the azure store", options, AZURE_OBJECTS_OPTIONS);
  if (unknown !== undefined) problems.push(unknown);
  const o = options as Record<string, unknown>;
  const sources = (["connectionString", "accountUrl", "containerClient"] as const).filter(
    (k) => o[k] !== undefined,
  );
  if (sources.length === 0) {
    problems.push("one of connectionString, accountUrl (+ credential) or containerClient is required");
  } else if (sources.length > 1) {
    problems.push(
      `give only one of connectionString, accountUrl, containerClient (got ${sources.join(", ")})`,
    );
  }
  let connection: AzureConnection | undefined;
  let container = typeof o.container === "string" ? o.container : undefined;
  if (o.container !== undefined && typeof o.container !== "string")
    problems.push("container must be a string");

  if (o.connectionString !== undefined) {
    if (typeof o.connectionString !== "string" || o.connectionString.trim() === "") {
      problems.push("connectionString must be a non-empty string");
    } else connection = { kind: "connectionString", connectionString: o.connectionString };
  }
  if (o.accountUrl !== undefined) {
    let url: URL | undefined;
    try {
      url = typeof o.accountUrl === "string" ? new URL(o.accountUrl) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:")) {
      problems.push("accountUrl must be an http(s) URL such as https://<account>.blob.core.windows.net");
    } else {
      const credential = o.credential as AzureCredential | undefined;
      connection = { kind: "accountUrl", accountUrl: String(o.accountUrl), credential };
    }
  }
  if (o.credential !== undefined) {
    const c = o.credential;
    const usable =
      isObject(c) && (typeof c.getToken === "function" || typeof c.computeHMACSHA256 === "function");
    if (!usable) problems.push("credential must be a TokenCredential or a StorageSharedKeyCredential");
    if (o.accountUrl === undefined) problems.push("credential goes with accountUrl");
  }
  if (o.containerClient !== undefined) {
    const client = o.containerClient as Partial<AzureContainerClientLike> | null;
    if (
      !isObject(client) ||
      typeof client.url !== "string" ||
      typeof client.containerName !== "string" ||
      typeof client.getBlockBlobClient !== "function"
    ) {
      problems.push("containerClient must be an @azure/storage-blob ContainerClient");
    } else {
      if (container !== undefined && container !== client.containerName) {
        problems.push(
          `container ${JSON.stringify(container)} differs from the containerClient's ${JSON.stringify(client.containerName)}`,
        );
      }
      container = client.containerName;
      connection = { kind: "containerClient", containerClient: client as AzureContainerClientLike };
    }
  }
  if (container === undefined) {
    if (o.containerClient === undefined) problems.push("container is required");
  } else {
    const problem = containerNameProblem(container);
    if (problem !== undefined) problems.push(problem);
  }
  let prefix = "";
  if (o.prefix !== undefined) {
    if (typeof o.prefix !== "string") problems.push("prefix must be a string");
    else prefix = normalizePrefix(o.prefix, problems);
  }
  const timeout = o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (typeof timeout !== "number" || !Number.isInteger(timeout) || timeout < 1) {
    problems.push("requestTimeoutMs must be a positive integer");
  }
  if (o.listStartFrom !== undefined && typeof o.listStartFrom !== "boolean") {
    problems.push("listStartFrom must be a boolean");
  }
  if (problems.length > 0 || connection === undefined || container === undefined) {
    throw new InvalidConfigError(problems.length > 0 ? problems : ["no usable connection"]);
  }
  return {
    container,
    prefix,
    connection,
    requestTimeoutMs: timeout as number,
    listStartFrom: (o.listStartFrom as boolean | undefined) ?? true,
  };
}
