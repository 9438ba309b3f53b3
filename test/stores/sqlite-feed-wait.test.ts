/**
 * `waitForChanges` of the SQLite store: woken by another connection's or another process's
 * commit (through `fs.watch`, with the poll as fallback), false on timeout and abort, and no
 * watcher or timer left behind. No timing is asserted: a wait that should wake has a long
 * timeout, so a missed wake-up shows as `false`.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createFeedWaiter, FEED_POLL_MS } from "../../src/stores/sqlite/feed-wait.js";
import { SqliteStore } from "../../src/stores/sqlite/sqlite-store.js";
import type { StoreChange } from "../../src/stores/types.js";
import { record } from "../support/records.js";

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const WRITER = fileURLToPath(new URL("./fixtures/tip-writer.ts", import.meta.url));
const FOLLOWER = fileURLToPath(new URL("./fixtures/feed-follower.ts", import.meta.url));
/** Long enough that only a missed wake-up runs into it. */
const WAKE_TIMEOUT = 30_000;

let dir: string;
const opened: { close(): unknown }[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-sqlite-wait-"));
});

afterEach(async () => {
  for (const handle of opened.splice(0).reverse()) await handle.close();
  await rm(dir, { recursive: true, force: true });
});

async function openStore(dbPath = join(dir, "cairn.db")): Promise<SqliteStore> {
  const store = await SqliteStore.open({ dbPath });
  opened.push(store);
  await store.setup();
  return store;
}

const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));
const watchers = () => process.getActiveResourcesInfo().filter((r) => r === "FSEventWrap").length;
const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("SqliteStore.waitForChanges", () => {
  it("wakes when another store instance on the database commits a change", async () => {
    const waiter = await openStore();
    const writer = await openStore();
    const since = await waiter.feedCursor();
    const woken = waiter.waitForChanges(since, WAKE_TIMEOUT);
    await tick();
    await writer.putCheckpoint(record("r", 1), []);
    expect(await woken).toBe(true);
    expect((await waiter.readChanges(since, 10)).map((c) => c.checkpointId)).toEqual(["r_s1"]);
    // A write that is no change (an output, a lease, meta) does not end the wait.
    const cursor = await waiter.feedCursor();
    const idle = waiter.waitForChanges(cursor, 4 * FEED_POLL_MS);
    await writer.putMeta("k", "v");
    await writer.acquireLease("r", "me", 1000);
    expect(await idle).toBe(false);
  });

  it("is woken by the file watch alone (no poll)", async () => {
    const writer = await openStore();
    const reader = new Database(join(dir, "cairn.db"), { readonly: true });
    opened.push(reader);
    const newest = reader.prepare("SELECT COALESCE(MAX(position), 0) AS p FROM cairn_changes");
    const hasChangesAfter = (since: string) => (newest.get() as { p: number }).p > Number(since);
    const waiter = createFeedWaiter(join(dir, "cairn.db"), hasChangesAfter, 3_600_000);
    const woken = waiter.wait("0", WAKE_TIMEOUT);
    await tick();
    await writer.putCheckpoint(record("r", 1), []);
    expect(await woken).toBe(true);
  });

  it("answers at once when a change after the cursor exists, or the cursor is not this feed's", async () => {
    const store = await openStore();
    const start = await store.feedCursor();
    await store.putCheckpoint(record("r", 1), []);
    expect(await store.waitForChanges(start, WAKE_TIMEOUT)).toBe(true);
    const other = await openStore(join(dir, "other.db"));
    // Spurious true: readChanges then reports the foreign cursor.
    expect(await store.waitForChanges(await other.feedCursor(), WAKE_TIMEOUT)).toBe(true);
  });

  it("resolves false on timeout, on abort, with an aborted signal, and when the store closes", async () => {
    const store = await openStore();
    const since = await store.feedCursor();
    expect(await store.waitForChanges(since, 0)).toBe(false);
    expect(await store.waitForChanges(since, 30)).toBe(false);
    const controller = new AbortController();
    const aborted = store.waitForChanges(since, WAKE_TIMEOUT, controller.signal);
    await tick();
    controller.abort();
    expect(await aborted).toBe(false);
    expect(await store.waitForChanges(since, WAKE_TIMEOUT, controller.signal)).toBe(false);
    const pending = store.waitForChanges(since, WAKE_TIMEOUT);
    await tick();
    await store.close();
    expect(await pending).toBe(false);
  });

  it("leaves no watcher or timer behind, however a wait ends", async () => {
    const store = await openStore();
    const writer = await openStore();
    await tick(50);
    const before = { watchers: watchers(), timers: timers() };
    for (let i = 0; i < 5; i++) {
      const since = await store.feedCursor();
      expect(await store.waitForChanges(since, 20)).toBe(false);
      await tick(); // a closed handle goes at the next turn of the event loop
      expect(watchers()).toBe(before.watchers);
      const controller = new AbortController();
      const aborted = store.waitForChanges(since, WAKE_TIMEOUT, controller.signal);
      expect(watchers()).toBe(before.watchers + 1);
      controller.abort();
      expect(await aborted).toBe(false);
      const woken = store.waitForChanges(since, WAKE_TIMEOUT);
      await writer.putCheckpoint(record("r", i + 1), []);
      expect(await woken).toBe(true);
    }
    await tick();
    expect(watchers()).toBe(before.watchers);
    expect(timers()).toBeLessThanOrEqual(before.timers);
  });

  it("in memory: woken by the same store's writes, with no file to watch", async () => {
    const store = await openStore(":memory:");
    const since = await store.feedCursor();
    const before = watchers();
    const woken = store.waitForChanges(since, WAKE_TIMEOUT);
    expect(watchers()).toBe(before);
    await tick();
    await store.putCheckpoint(record("r", 1), []);
    expect(await woken).toBe(true);
    expect(await store.waitForChanges(await store.feedCursor(), 30)).toBe(false);
  });
});

/** Starts a tip-writer process; resolves `ready` once it opened the store, `done` on a clean exit. */
function startWriter(args: string[]): { ready: Promise<void>; done: Promise<void> } {
  const child = spawn(process.execPath, ["--import", TSX, WRITER, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const ready = new Promise<void>((resolve) => {
    child.stdout.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resolve();
    });
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`writer exited with ${code}: ${stderr}`)),
    );
  });
  return { ready: Promise.race([ready, done]), done };
}

it("follows two writer processes: every checkpoint once, in commit order", async () => {
  const dbPath = join(dir, "cairn.db");
  const store = await openStore(dbPath);
  const since = await store.feedCursor();
  const go = join(dir, "go");
  const WRITES = 15;
  const writers = ["w0", "w1"].map((tag) =>
    startWriter([`sqlite:${dbPath}`, "race_run", tag, String(WRITES), go]),
  );
  await Promise.all(writers.map((w) => w.ready));

  const seen: StoreChange[] = [];
  let exited = false;
  const finished = Promise.all(writers.map((w) => w.done)).finally(() => {
    exited = true;
  });
  await writeFile(go, "");
  let cursor = since;
  // Follow as a watcher does: read what is there, else wait; after the writers exit, one last read.
  for (let last = false; !last; ) {
    last = exited;
    const page = await store.readChanges(cursor, 1000);
    seen.push(...page);
    cursor = page.at(-1)?.cursor ?? cursor;
    if (page.length === 0 && !last) await store.waitForChanges(cursor, 1000);
  }
  await finished;

  const listed = await store.listCheckpoints("race_run");
  const ids = listed.map((e) => (e.ok ? e.metadata.checkpoint_id : "corrupt"));
  expect(ids).toHaveLength(2 * WRITES);
  expect(seen.map((c) => [c.type, c.checkpointId])).toEqual(ids.map((id) => ["checkpoint", id]));
  expect(seen.map((c) => c.sequence)).toEqual(ids.map((_, i) => i + 1));
}, 120_000);

/** Starts a feed follower process from `since`; its complete JSON lines are collected as they come. */
function startFollower(url: string, since: string | undefined) {
  const child = spawn(process.execPath, ["--import", TSX, FOLLOWER, url, since ?? "-", "20"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: StoreChange[] = [];
  let buffer = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  // A line cut short by the kill is dropped: the follower did not finish delivering it.
  child.stdout.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (line !== "ready") lines.push(JSON.parse(line) as StoreChange);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, lines, exited, stderr: () => stderr };
}

it("a follower SIGKILLed and restarted from its last cursor gets every change once, in order", async () => {
  const dbPath = join(dir, "cairn.db");
  const url = `sqlite:${dbPath}`;
  const store = await openStore(dbPath);
  await store.putCheckpoint(record("before", 1), []);
  const start = await store.feedCursor();
  const go = join(dir, "go");
  const writers = ["w0", "w1"].map((tag) => startWriter([url, "race_run", tag, "30", go]));
  await Promise.all(writers.map((w) => w.ready));
  let writing = true;
  const finished = Promise.all(writers.map((w) => w.done)).finally(() => {
    writing = false;
  });
  await writeFile(go, "");

  const delivered: StoreChange[] = [];
  let cursor: string | undefined = start;
  let kills = 0;
  for (let caughtUp = false; !caughtUp; kills++) {
    if (kills > 300) throw new Error("the follower never caught up");
    const follower = startFollower(url, cursor);
    // Killed after a few changes (a different number each time), or once caught up after the writers.
    const enough = 1 + (kills % 6);
    for (;;) {
      await tick(5);
      if (follower.child.exitCode !== null) throw new Error(`follower exited: ${follower.stderr()}`);
      if (follower.lines.length >= enough) break;
      if (!writing && follower.lines.at(-1)?.cursor === (await store.feedCursor())) {
        caughtUp = true;
        break;
      }
    }
    follower.child.kill("SIGKILL");
    await follower.exited;
    delivered.push(...follower.lines);
    cursor = follower.lines.at(-1)?.cursor ?? cursor;
  }
  await finished;

  const history = await store.readChanges(start, 1000);
  expect(history.map((c) => c.sequence)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  expect(delivered).toEqual(history);
  expect(kills).toBeGreaterThan(5);
}, 300_000);
