import type { ErrorBody, Session } from "./types";

/** An error answer of the API (or a network failure), with the server's stable code. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

let csrfToken = "";

/** Remembers the session's CSRF token; every POST sends it. */
export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Encodes one path segment (ids may hold any character). */
export const seg = (id: string): string => encodeURIComponent(id);

async function failure(res: Response): Promise<ApiError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const err = (body as Partial<ErrorBody> | undefined)?.error;
  if (err && typeof err.code === "string") return new ApiError(err.code, String(err.message), res.status);
  return new ApiError(`HTTP_${res.status}`, res.statusText || "request failed", res.status);
}

async function send(url: string, init?: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { credentials: "same-origin", ...init });
  } catch (e) {
    throw new ApiError("NETWORK", e instanceof Error ? e.message : String(e), 0);
  }
  if (!res.ok) throw await failure(res);
  return res;
}

/** GET a JSON document; `response.json()` parses off the main rendering path, even for 1 MB. */
export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const res = await send(url, { headers: { Accept: "application/json" }, signal: signal ?? null });
  return (await res.json()) as T;
}

/** POST JSON with the CSRF header; the server refuses state changes without it. */
export async function postRaw(url: string, body: unknown): Promise<Response> {
  return send(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Cairn-CSRF": csrfToken, Accept: "application/json" },
    body: JSON.stringify(body),
  });
}

/** POST JSON and parse the JSON answer. */
export async function postJson<T>(url: string, body: unknown): Promise<T> {
  return (await (await postRaw(url, body)).json()) as T;
}

/** Saves an attachment answer (Content-Disposition) through a blob URL. */
export async function saveAttachment(res: Response, fallbackName: string): Promise<string> {
  const disposition = res.headers.get("Content-Disposition") ?? "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  const name = match?.[1] ? decodeURIComponent(match[1]) : fallbackName;
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}

/** GET /api/session */
export const loadSession = (): Promise<Session> => getJson<Session>("/api/session");
