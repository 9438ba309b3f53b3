/**
 * The console's HTTP application: guards, the read API, the actions (mounted only when the
 * console was started with `--allow-actions`: without it no action endpoint exists), live
 * updates, `/metrics` and the page's files. What each route returns comes from `api/`,
 * `actions.ts` and `audit.ts`; this file only routes, parses and answers.
 */
import { getConnInfo } from "@hono/node-server/conninfo";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { streamSSE } from "hono/streaming";
import { InvalidArgumentError } from "../core/errors.js";
import { changeRecord } from "../feed/watch.js";
import type { Asset } from "./assets.js";
import type { FeedHub, LiveMessage, LiveMode } from "./events.js";
import { errorResponse, HttpError, UiErrorCode } from "./http-errors.js";
import {
  authCheck,
  type Guard,
  hostCheck,
  loginHandler,
  methodAndCsrfCheck,
  securityHeaders,
} from "./security.js";

/** Who asked: the OS user the console runs as, and the client's address. */
export interface Who {
  user: string;
  client: string;
}

/** A downloadable file. */
export interface FileAnswer {
  filename: string;
  text: string;
}

/** The read side, bound to the console's manager (see `api/`). */
export interface ReadApi {
  runs(query: Record<string, string | undefined>): Promise<unknown>;
  run(pipelineId: string): Promise<unknown>;
  graph(pipelineId: string, kind: "stages" | "checkpoints"): Promise<string>;
  checkpoint(checkpointId: string): Promise<unknown>;
  state(checkpointId: string): Promise<string>;
  output(checkpointId: string, name: string): Promise<string>;
  exportFile(checkpointId: string): Promise<FileAnswer>;
  compare(a: string, b: string): Promise<unknown>;
  statistics(): Promise<unknown>;
}

/** The actions, each audited by its implementation (see `actions.ts`). */
export interface ActionsApi {
  validate(body: unknown, who: Who): Promise<unknown>;
  quarantine(body: unknown, who: Who): Promise<unknown>;
  cleanupPreview(body: unknown, who: Who): Promise<unknown>;
  cleanup(body: unknown, who: Who): Promise<unknown>;
  exportRun(body: unknown, who: Who): Promise<FileAnswer>;
}

/** The audit trail as the console uses it. */
export interface AuditApi {
  read(query: { limit?: number; before?: string }): Promise<unknown>;
  /** Runs a read worth recording (an export downloaded) between its audit entries. */
  access<T>(action: string, target: Record<string, string>, who: Who, work: () => Promise<T>): Promise<T>;
}

/** Everything the application needs, built by `server.ts`. */
export interface AppDeps {
  guard: Guard;
  assets: Map<string, Asset>;
  session: Record<string, unknown>;
  read: ReadApi;
  actions: ActionsApi | undefined;
  audit: AuditApi;
  metrics: { contentType: string; text(): Promise<string> };
  feed: FeedHub;
  live: LiveMode;
  user: string;
  log: (text: string) => void;
}

const HEARTBEAT_MS = 15_000;

function who(c: Context, user: string): Who {
  let client = "unknown";
  try {
    client = getConnInfo(c).remote.address ?? "unknown";
  } catch {
    // A request not from a socket (tests calling app.fetch directly) has no address.
  }
  return { user, client };
}

function intParam(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (!/^\d{1,7}$/.test(value))
    throw new InvalidArgumentError(
      `${name} must be a whole number, not ${JSON.stringify(value.slice(0, 40))}`,
    );
  return Number(value);
}

function attachment(c: Context, file: FileAnswer): Response {
  const safe = file.filename.replace(/[^\w.-]/g, "_").slice(0, 200);
  return c.body(file.text, 200, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Disposition": `attachment; filename="${safe}"`,
  });
}

async function jsonBody(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new InvalidArgumentError("the request body is not valid JSON");
  }
}

/** Builds the application. */
export function createApp(deps: AppDeps): Hono {
  const { guard, read, log } = deps;
  const app = new Hono();
  app.onError((error, c) => {
    if (error instanceof HTTPException) {
      const code = error.status === 413 ? "CAIRN_TOO_LARGE" : UiErrorCode.Internal;
      return c.json({ error: { code, message: error.message || "request refused" } }, error.status);
    }
    const { status, body } = errorResponse(error, log);
    return c.json(body, status as 400);
  });
  app.notFound((c) =>
    c.json(
      {
        error: { code: "CAIRN_NOT_FOUND", message: `no such page or endpoint: ${c.req.path.slice(0, 200)}` },
      },
      404,
    ),
  );
  app.use("*", securityHeaders());
  app.use("*", hostCheck(guard));
  app.get("/login", loginHandler(guard));
  app.use("*", authCheck(guard));
  app.use("*", methodAndCsrfCheck(guard));
  app.use("/api/actions/*", bodyLimit({ maxSize: 64 * 1024 }));

  app.get("/api/session", (c) => c.json({ ...deps.session, csrfToken: guard.csrfToken }));
  app.get("/api/runs", async (c) => c.json(await read.runs(c.req.query())));
  app.get("/api/runs/:id", async (c) => c.json(await read.run(c.req.param("id"))));
  app.get("/api/runs/:id/graph.svg", async (c) => {
    const kind = c.req.query("kind") ?? "stages";
    if (kind !== "stages" && kind !== "checkpoints")
      throw new InvalidArgumentError(
        `kind must be stages or checkpoints, not ${JSON.stringify(kind.slice(0, 40))}`,
      );
    return c.body(await read.graph(c.req.param("id"), kind), 200, { "Content-Type": "image/svg+xml" });
  });
  app.get("/api/checkpoints/:cid", async (c) => c.json(await read.checkpoint(c.req.param("cid"))));
  app.get("/api/checkpoints/:cid/state", async (c) =>
    c.body(await read.state(c.req.param("cid")), 200, { "Content-Type": "application/json; charset=utf-8" }),
  );
  app.get("/api/checkpoints/:cid/outputs/:name", async (c) =>
    c.body(await read.output(c.req.param("cid"), c.req.param("name")), 200, {
      "Content-Type": "application/json; charset=utf-8",
    }),
  );
  app.get("/api/checkpoints/:cid/export", async (c) => {
    const checkpointId = c.req.param("cid");
    const file = await deps.audit.access("export-download", { checkpointId }, who(c, deps.user), () =>
      read.exportFile(checkpointId),
    );
    return attachment(c, file);
  });
  app.get("/api/compare", async (c) => {
    const a = c.req.query("a");
    const b = c.req.query("b");
    if (!a || !b) throw new InvalidArgumentError("compare needs two checkpoint ids: ?a=<id>&b=<id>");
    return c.json(await read.compare(a, b));
  });
  app.get("/api/statistics", async (c) => c.json(await read.statistics()));
  app.get("/api/audit", async (c) => {
    const limit = intParam(c.req.query("limit"), "limit");
    const before = c.req.query("before");
    return c.json(
      await deps.audit.read({ ...(limit !== undefined ? { limit } : {}), ...(before ? { before } : {}) }),
    );
  });
  app.get("/api/events", (c) => events(c, deps.feed, deps.live));
  app.get("/metrics", async (c) =>
    c.body(await deps.metrics.text(), 200, { "Content-Type": deps.metrics.contentType }),
  );

  const actions = deps.actions;
  if (actions) {
    const act = (name: keyof Omit<ActionsApi, "exportRun">) =>
      app.post(`/api/actions/${name === "cleanupPreview" ? "cleanup/preview" : name}`, async (c) =>
        c.json(await actions[name](await jsonBody(c), who(c, deps.user))),
      );
    act("validate");
    act("quarantine");
    act("cleanupPreview");
    act("cleanup");
    app.post("/api/actions/export", async (c) =>
      attachment(c, await actions.exportRun(await jsonBody(c), who(c, deps.user))),
    );
  }

  app.get("*", (c) => {
    const asset = deps.assets.get(c.req.path);
    if (!asset) {
      if (deps.assets.size === 0 && (c.req.path === "/" || c.req.path === "/index.html"))
        throw new HttpError(
          503,
          UiErrorCode.AssetsMissing,
          "the console's page was not built: run `npm run build` (the API under /api answers)",
        );
      return c.json({ error: { code: "CAIRN_NOT_FOUND", message: "no such file" } }, 404);
    }
    return c.body(asset.body as Uint8Array<ArrayBuffer>, 200, {
      "Content-Type": asset.type,
      "Cache-Control": asset.immutable ? "public, max-age=31536000, immutable" : "no-cache",
    });
  });
  return app;
}

/** `GET /api/events`: the feed's changes as server-sent events, with a heartbeat. */
function events(c: Context, feed: FeedHub, live: LiveMode): Response {
  return streamSSE(c, async (stream) => {
    const queue: LiveMessage[] = [];
    let wake: (() => void) | undefined;
    let closed = false;
    const unsubscribe = feed.subscribe((message) => {
      queue.push(message);
      wake?.();
    });
    stream.onAbort(() => {
      closed = true;
      wake?.();
    });
    try {
      await stream.writeSSE({ event: "hello", data: JSON.stringify(live) });
      while (!closed) {
        for (let message = queue.shift(); message; message = queue.shift()) {
          const data = message.event === "change" ? changeRecord(message.data) : message.data;
          await stream.writeSSE({ event: message.event, data: JSON.stringify(data) });
        }
        let timer: NodeJS.Timeout | undefined;
        const beat = await new Promise<boolean>((resolve) => {
          wake = () => resolve(false);
          timer = setTimeout(() => resolve(true), HEARTBEAT_MS);
        });
        clearTimeout(timer);
        wake = undefined;
        if (beat && !closed) await stream.write(": heartbeat\n\n");
      }
    } finally {
      unsubscribe();
    }
  });
}
