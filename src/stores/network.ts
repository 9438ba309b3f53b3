/**
 * Node's socket error codes, shared by the stores that talk to a server: one list of what means
 * "the server cannot be reached" (a `StoreUnavailableError`, not a failed operation), and the
 * subset that proves a request never left (so a write cannot have been applied).
 */

/** Socket errors: no answer came, whatever was sent. */
export const SOCKET_ERROR_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTDOWN",
]);

/** Errors raised before a connection existed: the request never reached the server. */
export const NEVER_SENT_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);
