/**
 * Reading the SDK's errors: which answer means "not there", "the condition failed", "unreachable"
 * or "outcome unknown", and the typed cairn error each becomes. The SDK throws a `RestError`
 * with `statusCode` and the service's error code in `code` (`BlobNotFound`, `ConditionNotMet`);
 * network failures carry the socket's code (`ECONNREFUSED`) or `REQUEST_SEND_ERROR`.
 */
import { StoreOperationError, StoreUnavailableError } from "../../core/errors.js";

/** The strategy name the errors carry. */
export const STRATEGY = "azure";

/** The HTTP status of an SDK error, if it has one. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

/** The service's error code (`BlobNotFound`), or the network code (`ECONNREFUSED`). */
export function codeOf(error: unknown): string | undefined {
  const e = error as { code?: unknown; details?: { errorCode?: unknown } } | null;
  const code = e?.details?.errorCode ?? e?.code;
  return typeof code === "string" ? code : undefined;
}

const NETWORK =
  /ECONNREFUSED|ECONNRESET|ECONNABORTED|EPIPE|ETIMEDOUT|ESOCKETTIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|socket hang up|REQUEST_SEND_ERROR/i;

/** True for an aborted request (our deadline fired; `AbortSignal.timeout` names it TimeoutError). */
export function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError");
}

/** True when the request did not get an HTTP answer: refused, reset, timed out, aborted. */
export function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (isAbort(error)) return true;
  if (statusOf(error) !== undefined) return false;
  const code = (error as { code?: unknown }).code;
  return NETWORK.test(`${typeof code === "string" ? code : ""} ${error.message}`);
}

/** True when the connection was refused: the request surely never reached the server. */
export function isRefused(error: unknown): boolean {
  if (!(error instanceof Error) || statusOf(error) !== undefined) return false;
  const code = (error as { code?: unknown }).code;
  return code === "ECONNREFUSED" || /ECONNREFUSED/.test(error.message);
}

/** A 404 for the blob or its container. */
export function isNotFound(error: unknown): boolean {
  return statusOf(error) === 404;
}

/** A server answer that says it could not serve the request now (after the SDK's retries). */
export function isServerBusy(error: unknown): boolean {
  const status = statusOf(error);
  return status === 503 || status === 502 || status === 504 || status === 408;
}

/**
 * True when a write's outcome is unknown: no answer, or a 5xx (Azure may have applied a put and
 * then failed; RGW answers 500 to conditional puts under contention). Only re-reading tells.
 */
export function isUnknownOutcome(error: unknown): boolean {
  const status = statusOf(error);
  if (status !== undefined) return status >= 500 || status === 408;
  return isNetworkError(error) && !isRefused(error);
}

/**
 * The typed error for an SDK failure: unreachable, timed out or busy → `StoreUnavailableError`
 * (`maybeCommitted` when a write may have been applied); anything else → `StoreOperationError`.
 */
export function storeError(
  operation: string,
  error: unknown,
  where: string,
  options: {
    /** The failed request was a write: it may have been applied unless it was refused. */
    maybeCommitted?: boolean;
    /** An earlier try of the same write may have been applied, whatever this one's fate. */
    earlierTryMayHaveApplied?: boolean;
    timeoutMs?: number;
  } = {},
): Error {
  const earlier = options.earlierTryMayHaveApplied ?? false;
  if (error instanceof StoreUnavailableError || error instanceof StoreOperationError) return error;
  if (isAbort(error)) {
    const limit = options.timeoutMs === undefined ? "" : ` within ${options.timeoutMs} ms`;
    return new StoreUnavailableError(STRATEGY, `${where}: ${operation} got no answer${limit}`, {
      cause: error,
      maybeCommitted: (options.maybeCommitted ?? false) || earlier,
    });
  }
  if (isNetworkError(error) || isServerBusy(error)) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return new StoreUnavailableError(STRATEGY, `${where}: ${operation}: ${reason}`, {
      cause: error,
      maybeCommitted: ((options.maybeCommitted ?? false) && !isRefused(error)) || earlier,
    });
  }
  return new StoreOperationError(STRATEGY, `${operation} (${where})`, { cause: error });
}
