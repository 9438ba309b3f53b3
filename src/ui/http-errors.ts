/**
 * How the console answers a failed request: a status and `{"error":{"code","message"}}`, never a
 * stack trace. cairn's typed errors keep their code; anything else is logged on the server's
 * stderr and answered with a generic 500, so a client never learns the server's file layout.
 */
import { type CairnError, ErrorCode, isCairnError } from "../core/errors.js";

/** Codes the console adds for its own HTTP-level refusals (stable, as cairn's error codes). */
export const UiErrorCode = {
  Unauthorized: "CAIRN_UI_UNAUTHORIZED",
  Csrf: "CAIRN_UI_CSRF",
  Host: "CAIRN_UI_HOST",
  Method: "CAIRN_UI_METHOD",
  BadRequest: "CAIRN_UI_BAD_REQUEST",
  MediaType: "CAIRN_UI_MEDIA_TYPE",
  AssetsMissing: "CAIRN_UI_ASSETS_MISSING",
  Internal: "CAIRN_UI_INTERNAL",
} as const;

/** An HTTP refusal of the console's own: status, code and message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

const STATUS: Partial<Record<string, number>> = {
  [ErrorCode.InvalidName]: 400,
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.InvalidReference]: 400,
  [ErrorCode.InvalidPipeline]: 400,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Conflict]: 409,
  [ErrorCode.KeyMissing]: 403,
  [ErrorCode.Corrupt]: 422,
  [ErrorCode.TooLarge]: 413,
  [ErrorCode.FormatTooNew]: 422,
  [ErrorCode.StoreUnsupported]: 501,
  [ErrorCode.StoreUnavailable]: 503,
  [ErrorCode.RunLocked]: 409,
};

/** The error body the API answers with. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** The status and body for `error`; `log` receives what a client must not see. */
export function errorResponse(
  error: unknown,
  log: (text: string) => void,
): { status: number; body: ErrorBody } {
  if (error instanceof HttpError)
    return { status: error.status, body: { error: { code: error.code, message: error.message } } };
  if (isCairnError(error)) {
    const status = STATUS[error.code] ?? 500;
    if (status === 500) log(describe(error));
    return { status, body: { error: { code: error.code, message: oneLine((error as CairnError).message) } } };
  }
  log(describe(error));
  return {
    status: 500,
    body: {
      error: { code: UiErrorCode.Internal, message: "internal error (the server's log has the details)" },
    },
  };
}

/** A message on one line without file paths of the server's own code. */
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*at .*/gs, "").slice(0, 2000);
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
}
