/**
 * The console's guards, in the order a request meets them:
 * - response headers: a strict Content-Security-Policy and the usual hardening on every answer;
 * - the Host header on a loopback bind (a page on another site cannot reach 127.0.0.1 through a
 *   DNS name it rebinds to it);
 * - authentication when a token is in force (any non-loopback bind): `Authorization: Bearer` or
 *   the session cookie that the one-time login link sets;
 * - methods: GET and HEAD read, POST acts, nothing else exists;
 * - CSRF on every POST: the per-server token from `/api/session` in `X-Cairn-CSRF`, a JSON body,
 *   and an `Origin` (when the browser sends one) equal to the server's own.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { HttpError, UiErrorCode } from "./http-errors.js";

/** The Content-Security-Policy of every response: the page loads only its own files. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** The session cookie's name. */
export const SESSION_COOKIE = "cairn_session";
/** The CSRF header's name. */
export const CSRF_HEADER = "X-Cairn-CSRF";

/** True for an address that only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** A new random secret (token, code, session id or CSRF token). */
export function secret(bytes = 24): string {
  return randomBytes(bytes).toString("base64url");
}

/** Compares secrets in constant time. */
export function sameSecret(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The secrets of one running console. */
export class Guard {
  /** Sent by the page with every POST. */
  readonly csrfToken = secret();
  private readonly codes = new Set<string>();
  private readonly sessions = new Set<string>();

  /** `token`: required on every request when set; `loopback`: the server listens on loopback only. */
  constructor(
    readonly token: string | undefined,
    readonly loopback: boolean,
  ) {}

  /** A new one-time login code (valid until used). */
  loginCode(): string {
    const code = secret();
    this.codes.add(code);
    return code;
  }

  /** Redeems a one-time code: a new session id, or undefined when the code is unknown or used. */
  redeem(code: string | undefined): string | undefined {
    if (code === undefined || !this.codes.delete(code)) return undefined;
    const session = secret(32);
    this.sessions.add(session);
    return session;
  }

  /** True when the request carries the token or a session cookie. */
  authenticated(c: Context): boolean {
    if (this.token === undefined) return true;
    const header = c.req.header("authorization");
    const bearer = header?.match(/^Bearer\s+(\S+)$/i)?.[1];
    if (bearer !== undefined && sameSecret(bearer, this.token)) return true;
    const session = getCookie(c, SESSION_COOKIE);
    return session !== undefined && this.sessions.has(session);
  }
}

/** The hardening headers every response carries. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy": CONTENT_SECURITY_POLICY,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** Hardening headers on every response, errors included. */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    const h = c.res.headers;
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) h.set(name, value);
    if (!h.has("Cache-Control")) h.set("Cache-Control", "no-store");
  };
}

/**
 * The answer to a request too malformed to reach the application (a backslash in the path, a
 * bad Host header): the adapter refuses it before routing, and this gives it the same JSON
 * error and headers as every other answer.
 */
export function malformedRequest(error: unknown): Response {
  const reason = error instanceof Error ? error.message : "malformed request";
  return new Response(
    JSON.stringify({
      error: { code: UiErrorCode.BadRequest, message: `malformed request: ${reason.slice(0, 200)}` },
    }),
    {
      status: 400,
      headers: { ...SECURITY_HEADERS, "Content-Type": "application/json", "Cache-Control": "no-store" },
    },
  );
}

/** Refuses a loopback console reached through any other host name (DNS rebinding). */
export function hostCheck(guard: Guard): MiddlewareHandler {
  return async (c, next) => {
    if (guard.loopback && guard.token === undefined) {
      const host = c.req.header("host") ?? "";
      const name = host.replace(/:\d+$/, "");
      if (!isLoopback(name))
        throw new HttpError(
          403,
          UiErrorCode.Host,
          `this console answers on loopback names only, not ${host}`,
        );
    }
    await next();
  };
}

/** The one-time login link's handler: sets the session cookie and sends the browser to `/`. */
export function loginHandler(guard: Guard): (c: Context) => Response {
  return (c) => {
    const session = guard.redeem(c.req.query("code"));
    if (session === undefined)
      throw new HttpError(
        401,
        UiErrorCode.Unauthorized,
        "this login link is unknown or was used already: ask for a new one (restart `cairn ui`) or send the token as a bearer header",
      );
    setCookie(c, SESSION_COOKIE, session, { httpOnly: true, sameSite: "Strict", path: "/" });
    return c.redirect("/", 303);
  };
}

/** Authentication of every request but the login link's. */
export function authCheck(guard: Guard): MiddlewareHandler {
  return async (c, next) => {
    if (!guard.authenticated(c))
      throw new HttpError(
        401,
        UiErrorCode.Unauthorized,
        "authentication required: send `Authorization: Bearer <token>` or open the one-time login link `cairn ui` printed",
      );
    await next();
  };
}

/** GET and HEAD read, POST acts (with the CSRF checks); any other method is refused. */
export function methodAndCsrfCheck(guard: Guard): MiddlewareHandler {
  return async (c, next) => {
    const method = c.req.method;
    if (method === "GET" || method === "HEAD") return next();
    if (method !== "POST") throw new HttpError(405, UiErrorCode.Method, `method ${method} is not allowed`);
    if (!sameSecret(c.req.header(CSRF_HEADER), guard.csrfToken))
      throw new HttpError(403, UiErrorCode.Csrf, `a POST needs the ${CSRF_HEADER} header from /api/session`);
    const origin = c.req.header("origin");
    const host = c.req.header("host");
    if (origin !== undefined && origin !== `http://${host}`)
      throw new HttpError(403, UiErrorCode.Csrf, `cross-origin POST from ${origin} refused`);
    const site = c.req.header("sec-fetch-site");
    if (site !== undefined && site !== "same-origin" && site !== "none")
      throw new HttpError(403, UiErrorCode.Csrf, `a ${site} POST is refused`);
    const type = c.req.header("content-type") ?? "";
    if (!/^application\/json\b/i.test(type))
      throw new HttpError(
        415,
        UiErrorCode.MediaType,
        "a POST's body must be JSON (Content-Type: application/json)",
      );
    return next();
  };
}
