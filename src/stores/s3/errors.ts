/**
 * How S3 failures map to cairn's typed errors, and the ETag normalization: the adapter keeps
 * ETags unquoted and sends them quoted, because servers disagree on the form they return.
 */
import { CairnError, StoreOperationError, StoreUnavailableError } from "../../core/errors.js";
import { NEVER_SENT_CODES, SOCKET_ERROR_CODES } from "../network.js";

/** What an SDK error carries that matters here. */
export interface S3Failure {
  status: number | undefined;
  code: string;
  attempts: number;
}

/** The HTTP status, the error code and the attempts the SDK made. */
export function describeFailure(error: unknown): S3Failure {
  const e = (error ?? {}) as {
    name?: unknown;
    Code?: unknown;
    code?: unknown;
    $metadata?: { httpStatusCode?: number; attempts?: number };
    $response?: { statusCode?: number };
  };
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  const code =
    typeof e.Code === "string" ? e.Code : typeof e.code === "string" ? e.code : String(e.name ?? "");
  return { status, code, attempts: e.$metadata?.attempts ?? 1 };
}

// Errors of a request that got no HTTP answer.
const NETWORK_CODES = new Set([
  ...SOCKET_ERROR_CODES,
  "UND_ERR_SOCKET",
  "TimeoutError",
  "AbortError",
  "RequestTimeout",
  "RequestTimeoutException",
]);

function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
    if (NETWORK_CODES.has(e.name)) return e.name;
  }
  return undefined;
}

/**
 * The typed error for a failed request: no answer (refused, reset, timed out) or 503 →
 * `StoreUnavailableError` (`maybeCommitted` for a write that may have been sent); anything else
 * → `StoreOperationError`. A cairn error passes through unchanged.
 */
export function toStoreError(error: unknown, location: string, operation: string, write: boolean): Error {
  if (error instanceof CairnError) return error;
  const { status, attempts } = describeFailure(error);
  const net = status === undefined ? networkCode(error) : undefined;
  const message = error instanceof Error ? error.message || error.name : String(error);
  if (net !== undefined)
    return new StoreUnavailableError("s3", `${location}: ${operation}: ${message}`, {
      cause: error,
      // After the SDK's retries the last error tells only of the last attempt: an earlier one
      // (reset after it was sent, then the server went away) may have been applied.
      maybeCommitted: write && (!NEVER_SENT_CODES.has(net) || attempts > 1),
    });
  if (status === 503)
    return new StoreUnavailableError("s3", `${location}: ${operation}: ${message} (503)`, {
      cause: error,
      maybeCommitted: write,
    });
  return new StoreOperationError("s3", `${operation} (${location})`, { cause: error });
}

/** The ETag without quotes or weak marker, as the adapter hands it out. */
export function bareEtag(etag: string | undefined): string {
  if (etag === undefined) return "";
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/** The ETag as sent in `If-Match`. */
export function quotedEtag(etag: string): string {
  return `"${bareEtag(etag)}"`;
}
