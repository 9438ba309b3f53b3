/**
 * The console's security over HTTP, against the built `cairn ui` on a store filled by real runs:
 * a token on any non-loopback bind (bearer header or a one-time login link's cookie), CSRF on
 * every POST, no action endpoint without `--allow-actions`, the strict Content-Security-Policy
 * on every answer, and fuzzed ids and paths that always get a typed 4xx, never a 5xx, a stack
 * trace or a file from outside the built page.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConsoleServer, consoleBuilt, startConsoleServer } from "../support/console-server.js";
import { type ConsoleFixture, fillConsoleStore } from "../support/console-stores.js";
import { type RawResponse, rawRequest } from "../support/raw-http.js";

/** The design's policy, verbatim: the page loads only its own files. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const built = consoleBuilt();
if (!built && process.env.CI) throw new Error("the console is not built: run `npm run build` (tsc + vite)");
if (!built)
  console.warn("\n⚠⚠⚠ SKIPPING console security tests: run `npm run build` first (dist/ui/web). ⚠⚠⚠\n");

let dir: string;
let fixture: ConsoleFixture;
let plain: ConsoleServer;
let exposed: ConsoleServer;
let acting: ConsoleServer;
let packageJson: string;
const servers: ConsoleServer[] = [];

/** `http://127.0.0.1:<port>`: a server bound to 0.0.0.0 is fetched through loopback. */
const origin = (s: ConsoleServer) => `http://127.0.0.1:${s.port}`;

async function session(s: ConsoleServer, headers: Record<string, string> = {}) {
  const res = await fetch(`${origin(s)}/api/session`, { headers });
  expect(res.status).toBe(200);
  return (await res.json()) as { csrfToken: string; allowActions: boolean };
}

function expectError(res: RawResponse, status: number, code: string): void {
  expect({ status: res.status, body: res.body }).toMatchObject({ status });
  expect(JSON.parse(res.body)).toMatchObject({ error: { code, message: expect.any(String) } });
  expect(res.headers["content-security-policy"]).toBe(CSP);
}

describe.skipIf(!built)("cairn ui security (HTTP)", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cairn-ui-security-"));
    fixture = await fillConsoleStore(`sqlite:${join(dir, "c.db")}`);
    packageJson = await readFile(new URL("../../package.json", import.meta.url), "utf8");
    const start = async (args: string[]) => {
      const s = await startConsoleServer({ store: fixture.url, cwd: dir, args });
      servers.push(s);
      return s;
    };
    [plain, exposed, acting] = await Promise.all([
      start([]),
      start(["--host", "0.0.0.0"]),
      start(["--allow-actions", "--audit-log", join(dir, "audit.jsonl")]),
    ]);
  }, 60_000);
  afterAll(async () => {
    for (const s of servers.splice(0)) await s.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("needs a token on a non-loopback bind: 401 without it, the bearer token works", async () => {
    expect(exposed.token).toMatch(/\S{16,}/);
    for (const path of ["/api/session", "/api/runs", "/", `/api/runs/${fixture.runs.completed}`, "/metrics"])
      expectError(await rawRequest(origin(exposed), path), 401, "CAIRN_UI_UNAUTHORIZED");
    expectError(
      await rawRequest(origin(exposed), "/api/runs", { headers: { Authorization: "Bearer wrong-token" } }),
      401,
      "CAIRN_UI_UNAUTHORIZED",
    );
    const ok = await rawRequest(origin(exposed), "/api/runs", {
      headers: { Authorization: `Bearer ${exposed.token}` },
    });
    expect(ok.status).toBe(200);
    expect(ok.headers["content-security-policy"]).toBe(CSP);
    expect(JSON.parse(ok.body).runs.length).toBeGreaterThan(0);
  });

  it("the one-time login link sets a session cookie and works once", async () => {
    expect(exposed.loginUrl).toMatch(/\/login\?code=/);
    const link = new URL(exposed.loginUrl as string);
    const path = `${link.pathname}${link.search}`;
    const first = await rawRequest(origin(exposed), path);
    expect(first.status).toBeGreaterThanOrEqual(300);
    expect(first.status).toBeLessThan(400);
    expect(first.headers.location).toBe("/");
    const setCookie = ([] as string[]).concat(first.headers["set-cookie"] ?? []);
    const cookie = setCookie.find((c) => c.startsWith("cairn_session="));
    expect(cookie).toBeDefined();
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const pair = (cookie as string).split(";")[0] as string;
    expect((await session(exposed, { Cookie: pair })).csrfToken).toBeTruthy();
    // The code is spent: a second use is refused, and a made-up session is no session.
    expectError(await rawRequest(origin(exposed), path), 401, "CAIRN_UI_UNAUTHORIZED");
    expectError(
      await rawRequest(origin(exposed), "/api/session", { headers: { Cookie: "cairn_session=forged" } }),
      401,
      "CAIRN_UI_UNAUTHORIZED",
    );
  });

  it("refuses a POST without the CSRF header, from a foreign origin, or cross-site", async () => {
    const { csrfToken } = await session(acting);
    const body = JSON.stringify({ pipelineId: fixture.runs.completed });
    const json = { "Content-Type": "application/json" };
    const post = (headers: Record<string, string>) =>
      rawRequest(origin(acting), "/api/actions/validate", { method: "POST", headers, body });
    expectError(await post(json), 403, "CAIRN_UI_CSRF");
    expectError(await post({ ...json, "X-Cairn-CSRF": "not-the-token" }), 403, "CAIRN_UI_CSRF");
    expectError(
      await post({ ...json, "X-Cairn-CSRF": csrfToken, Origin: "http://evil.example" }),
      403,
      "CAIRN_UI_CSRF",
    );
    expectError(
      await post({ ...json, "X-Cairn-CSRF": csrfToken, "Sec-Fetch-Site": "cross-site" }),
      403,
      "CAIRN_UI_CSRF",
    );
    // The same request with the token from its own origin is an action that runs.
    const ok = await post({ ...json, "X-Cairn-CSRF": csrfToken, Origin: origin(acting) });
    expect({ status: ok.status, body: ok.body }).toMatchObject({ status: 200 });
    expect(JSON.parse(ok.body)).toMatchObject({ pipelineId: fixture.runs.completed });
  });

  it("has no action endpoint without --allow-actions, and only GET, HEAD and POST", async () => {
    const { csrfToken, allowActions } = await session(plain);
    expect(allowActions).toBe(false);
    const headers = { "Content-Type": "application/json", "X-Cairn-CSRF": csrfToken };
    const actions = ["validate", "quarantine", "cleanup/preview", "cleanup", "export"];
    for (const action of actions) {
      const body = JSON.stringify({ pipelineId: fixture.runs.completed });
      const path = `/api/actions/${action}`;
      expectError(
        await rawRequest(origin(plain), path, { method: "POST", headers, body }),
        404,
        "CAIRN_NOT_FOUND",
      );
      expectError(await rawRequest(origin(plain), path), 404, "CAIRN_NOT_FOUND");
    }
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      const res = await rawRequest(origin(acting), "/api/actions/validate", { method, headers });
      expect(res.status).toBe(405);
      expect(res.headers["content-security-policy"]).toBe(CSP);
    }
  });

  it("sets the strict Content-Security-Policy on every answer", async () => {
    const index = await rawRequest(origin(plain), "/");
    expect(index.status).toBe(200);
    expect(index.headers["content-type"]).toMatch(/text\/html/);
    // The page itself obeys it: no inline script or style for the policy to refuse.
    expect(index.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(index.body).not.toMatch(/<style\b|\sstyle=/i);
    const assets = [...index.body.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1] as string);
    expect(assets.length).toBeGreaterThan(0);
    const paths = [
      "/",
      ...assets,
      "/api/session",
      "/api/runs",
      `/api/runs/${fixture.runs.resumed}`,
      `/api/runs/${fixture.runs.resumed}/graph.svg?kind=stages`,
      `/api/checkpoints/${fixture.corruptCheckpointId}`,
      `/api/compare?a=${fixture.compare.a}&b=${fixture.compare.b}`,
      "/api/statistics",
      "/api/audit",
      "/metrics",
      "/api/runs/no-such-run",
      "/no/such/file.js",
    ];
    for (const path of paths) {
      const res = await rawRequest(origin(plain), path);
      expect({ path, csp: res.headers["content-security-policy"] }).toEqual({ path, csp: CSP });
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
    }
  });

  it("answers fuzzed ids and paths with a typed 4xx: no 5xx, no stack trace, no file from outside", async () => {
    const nasty = fc.constantFrom(
      "../",
      "../../../../etc/passwd",
      "..%2f..%2f..%2fetc%2fpasswd",
      "%2e%2e%2f%2e%2e%2fpackage.json",
      "%252e%252e%252fpackage.json",
      "..%5c..%5cpackage.json",
      "..\\..\\package.json",
      "%00",
      "a%00b",
      "/etc/passwd",
      "//etc/passwd",
      "C:\\Windows\\win.ini",
      "../package.json",
      "....//....//package.json",
      "%",
      "%zz",
      "%E0%A4%A",
      "%C0%AE%C0%AE%2F",
      "🧨💥",
      "ünïcødé",
      "名前",
      "\u202e",
      "x".repeat(5000),
      ".",
      "..",
      "a/b",
      "a?b",
      "a#b",
      "run-completed/../../../package.json",
    );
    const generated = fc.oneof(
      nasty,
      fc.string({ unit: "grapheme", maxLength: 40 }),
      fc.string({ unit: "binary", minLength: 1, maxLength: 20 }),
      fc.string({ minLength: 300, maxLength: 6000 }),
      fc
        .array(fc.constantFrom("..", "%2e%2e", "%252e", "etc", "passwd", "/", "%2f", "\\", "%5c", "%00"), {
          minLength: 1,
          maxLength: 8,
        })
        .map((parts) => parts.join("")),
    );
    const encodings = fc.constantFrom<(s: string) => string>(
      (s) => s,
      (s) => encodeURIComponent(s),
      (s) => encodeURIComponent(encodeURIComponent(s)),
    );
    const real = fixture.corruptCheckpointId;
    // Routes with an id in the path: the id is never a real one, so the answer is always 4xx.
    const pathRoutes: ((id: string) => string)[] = [
      (id) => `/api/runs/${id}`,
      (id) => `/api/runs/${id}/graph.svg?kind=stages`,
      (id) => `/api/runs/${id}/graph.svg?kind=checkpoints`,
      (id) => `/api/checkpoints/${id}`,
      (id) => `/api/checkpoints/${id}/state`,
      (id) => `/api/checkpoints/${id}/export`,
      (id) => `/api/checkpoints/${id}/outputs/extract`,
      (id) => `/api/checkpoints/${real}/outputs/${id}`,
      (id) => `/${id}`,
      (id) => `/assets/${id}`,
      (id) => `/api/${id}`,
    ];
    // Query parameters: a well-formed value may be an empty answer (200); never a 5xx.
    const queryRoutes: ((v: string) => string)[] = [
      (v) => `/api/compare?a=${v}&b=${real}`,
      (v) => `/api/compare?a=${real}&b=${v}`,
      (v) => `/api/runs?name=${v}`,
      (v) => `/api/runs?status=${v}`,
      (v) => `/api/runs?sort=${v}`,
      (v) => `/api/runs?limit=${v}`,
      (v) => `/api/runs?cursor=${v}`,
      (v) => `/api/runs/${fixture.runs.completed}/graph.svg?kind=${v}`,
      (v) => `/api/audit?limit=${v}`,
      (v) => `/api/audit?before=${v}`,
    ];
    const route = fc.oneof(
      fc.constantFrom(...pathRoutes).map((r) => ({ r, query: false })),
      fc.constantFrom(...queryRoutes).map((r) => ({ r, query: true })),
    );
    const indexBody = (await rawRequest(origin(plain), "/")).body;
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(generated, encodings, route, async (raw, encode, { r, query }) => {
        const value = encode(raw);
        const path = r(value);
        // `/` and `/index.html` are the page itself; the fuzz is about everything else.
        if (path === "/" || path === "/index.html" || path === "/.") return;
        const res = await rawRequest(origin(plain), path);
        seen.add(res.status);
        const what = `GET ${path.slice(0, 200)} -> ${res.status} ${res.body.slice(0, 300)}`;
        expect(res.status, what).toBeLessThan(500);
        // A path route answers 4xx, or (a `?` or `#` cutting the path back to `/`) the page itself.
        if (!query && res.status < 400) expect(res.body, what).toBe(indexBody);
        expect(res.headers["content-security-policy"], what).toBe(CSP);
        if (res.status >= 400) {
          const body = JSON.parse(res.body) as { error: { code: string; message: string } };
          expect(body.error.code, what).toMatch(/^CAIRN_[A-Z_]+$/);
          expect(typeof body.error.message, what).toBe("string");
        }
        expect(res.body, what).not.toMatch(/\bat .*\.(?:ts|js|mjs):\d+/);
        expect(res.body, what).not.toContain("node_modules");
        expect(res.body, what).not.toContain("root:x:0:0");
        expect(res.body, what).not.toContain(packageJson.slice(0, 200));
        expect(res.body, what).not.toContain('"devDependencies"');
      }),
      { numRuns: 1000 },
    );
    expect(plain.child.exitCode).toBeNull();
    expect([...seen].every((s) => s < 500)).toBe(true);
  }, 120_000);
});
