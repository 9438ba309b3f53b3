/**
 * `startConsole` in this process, over real stores: live updates through server-sent events (one
 * feed watcher for every page), poll mode on a store without a feed, the loopback Host check,
 * methods, a port in use, `/metrics`, and a close that cuts open event streams.
 */
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline } from "../../src/index.js";
import { MemoryObjects } from "../../src/stores/object/memory-objects.js";
import { ObjectStore } from "../../src/stores/object/object-store.js";
import { type ConsoleServer, startConsole } from "../../src/ui/server.js";
import { freshStores } from "../support/fresh-stores.js";

const stores = freshStores("ui-server");

async function run(manager: CheckpointManager, name: string): Promise<void> {
  const pipeline = new Pipeline({
    name,
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: [
      { name: "extract", agent: () => ({ rows: [1, 2, 3] }) },
      { name: "load", agent: () => ({ loaded: 3 }) },
    ],
  });
  await pipeline.execute({});
}

/** Reads server-sent events until `until` accepts one; the events read so far. */
async function readEvents(
  url: string,
  until: (event: string, data: unknown) => boolean,
  onOpen: () => Promise<void>,
): Promise<{ event: string; data: unknown }[]> {
  const response = await fetch(url, { headers: { accept: "text/event-stream" } });
  expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const seen: { event: string; data: unknown }[] = [];
  let buffer = "";
  let opened = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return seen;
      buffer += decoder.decode(value, { stream: true });
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event === undefined || data === undefined) continue;
        const parsed = JSON.parse(data) as unknown;
        seen.push({ event, data: parsed });
        if (!opened) {
          opened = true;
          await onOpen();
        }
        if (until(event, parsed)) return seen;
      }
    }
  } finally {
    await reader.cancel();
  }
}

/** A raw GET with a chosen Host header (fetch will not send a foreign one). */
function getWithHost(port: number, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, headers: { host } }, (res) => {
      let body = "";
      res.on("data", (chunk) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("startConsole", () => {
  let manager: CheckpointManager;
  let server: ConsoleServer;
  let dir: string;

  beforeAll(async () => {
    manager = new CheckpointManager({ store: stores.sqlite() });
    await run(manager, "first");
    dir = stores.dir();
    server = await startConsole({ manager, port: 0, auditLog: join(dir, "audit.jsonl"), log: () => {} });
  });
  afterAll(async () => {
    await server?.close();
    await manager?.close();
  });

  it("binds to loopback without a token and follows the change feed", async () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    expect(server.token).toBeUndefined();
    expect(server.live).toEqual({ mode: "feed" });
    const session = (await (await fetch(`${server.url}api/session`)).json()) as Record<string, unknown>;
    expect(session).toMatchObject({ allowActions: false, live: { mode: "feed" } });
    expect(session.csrfToken).toMatch(/^[\w-]{20,}$/);
  });

  it("sends a checkpoint written after the page opened as a server-sent event", async () => {
    const events = await readEvents(
      `${server.url}api/events`,
      (event, data) => event === "change" && (data as { pipelineName: string }).pipelineName === "second",
      () => run(manager, "second"),
    );
    expect(events[0]).toEqual({ event: "hello", data: { mode: "feed" } });
    const changes = events.filter((e) => e.event === "change").map((e) => e.data as Record<string, unknown>);
    expect(changes.at(-1)).toMatchObject({ type: "checkpoint", pipelineName: "second" });
    expect(changes.at(-1)?.cursor).toEqual(expect.any(String));
  });

  it("counts the feed's changes in /metrics", async () => {
    const text = await (await fetch(`${server.url}metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith('cairn_ui_feed_changes_total{type="checkpoint"}'));
    expect(Number(line?.split(" ").at(-1))).toBeGreaterThanOrEqual(3);
    expect(text).toContain("# TYPE cairn_checkpoint_load_duration_seconds histogram");
  });

  it("answers only loopback Host names (a rebound DNS name is refused)", async () => {
    const refused = await getWithHost(server.port, "/api/session", `attacker.example:${server.port}`);
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: "CAIRN_UI_HOST" } });
    const local = await getWithHost(server.port, "/api/session", `localhost:${server.port}`);
    expect(local.status).toBe(200);
  });

  it("reads with GET and HEAD only; other methods are 405", async () => {
    const head = await fetch(`${server.url}api/runs`, { method: "HEAD" });
    expect(head.status).toBe(200);
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      const response = await fetch(`${server.url}api/runs`, { method });
      expect(response.status).toBe(405);
      expect(await response.json()).toMatchObject({ error: { code: "CAIRN_UI_METHOD" } });
    }
  });

  it("refuses a port in use with a typed error", async () => {
    await expect(startConsole({ manager, port: server.port, log: () => {} })).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
      message: expect.stringContaining("choose another --port"),
    });
  });

  it("refuses bad options with typed errors", async () => {
    await expect(startConsole({ manager, port: 70_000 })).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
    await expect(startConsole({ manager, port: 0, token: "short" })).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
  });

  it("cuts open event streams on close", async () => {
    const other = await startConsole({ manager, port: 0, log: () => {} });
    const response = await fetch(`${other.url}api/events`);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    await other.close();
    // The stream ends (or errors) instead of hanging on a closed server.
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) return "ended";
      })().catch(() => "ended"),
    ).resolves.toBe("ended");
  });
});

describe("startConsole on a store without a change feed", () => {
  it("tells the page to poll, at the interval asked", async () => {
    const manager = new CheckpointManager({
      store: new ObjectStore({ strategy: "memobj", client: new MemoryObjects() }),
    });
    const server = await startConsole({ manager, port: 0, pollIntervalMs: 2_000, log: () => {} });
    try {
      expect(server.live).toEqual({ mode: "poll", intervalMs: 2_000 });
      const session = (await (await fetch(`${server.url}api/session`)).json()) as Record<string, unknown>;
      expect(session.live).toEqual({ mode: "poll", intervalMs: 2_000 });
      await run(manager, "polled");
      const runs = (await (await fetch(`${server.url}api/runs`)).json()) as {
        runs: { pipelineName: string }[];
      };
      expect(runs.runs.map((r) => r.pipelineName)).toEqual(["polled"]);
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
