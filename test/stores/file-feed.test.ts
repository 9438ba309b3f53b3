/**
 * The file store's change feed (`file-feed.ts`): what each write records, that failed writes
 * record nothing, real writer processes racing and being SIGKILLed, crash states built by hand
 * (an intent left between commit and append), waiting, retention, cursors, meta values.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointConflictError,
  CheckpointNotFoundError,
  FeedTrimmedError,
  InvalidArgumentError,
  InvalidConfigError,
  TipMovedError,
} from "../../src/core/errors.js";
import { formatCheckpointFile } from "../../src/stores/file/checkpoint-file.js";
import { importChanges, runRemovalChange } from "../../src/stores/file/feed-changes.js";
import { PENDING_DIR, sha256 } from "../../src/stores/file/feed-intents.js";
import { FEED_POLL_MS, FileStore } from "../../src/stores/file/file-store.js";
import { STAGING_DIR, stagedRunFolder, stageRun, TRASH_DIR } from "../../src/stores/file/staging.js";
import { GuardedStore } from "../../src/stores/guarded-store.js";
import { openStore } from "../../src/stores/registry.js";
import type { StoreChange } from "../../src/stores/types.js";
import { makeRecord } from "../../src/testing/store-contract.js";

const run = promisify(execFile);
const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const WRITER = fileURLToPath(new URL("./fixtures/feed-writer.ts", import.meta.url));

let root: string;
let basePath: string;
const children = new Set<ChildProcess>();
const opened: GuardedStore[] = [];
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-feed-"));
  basePath = join(root, "store");
});
afterEach(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  children.clear();
  for (const store of opened.splice(0)) await store.close();
  await rm(root, { recursive: true, force: true });
});

async function open(options: { feedRetention?: number; readOnly?: boolean; path?: string } = {}) {
  const { path = basePath, ...rest } = options;
  const store = new GuardedStore(new FileStore({ basePath: path, fsync: false, ...rest }));
  await store.setup();
  opened.push(store);
  return store;
}

const cp = (run: string, seq: number, name = "feed") =>
  makeRecord(run, seq, {
    id: `${run}-${seq}`,
    pipelineName: name,
    outputs: { [`s${seq}`]: `"${run}${seq}"` },
  });

async function put(store: GuardedStore, run: string, seq: number) {
  const { record, outputs } = cp(run, seq);
  await store.putCheckpoint(record, outputs);
}

/** Every retained change, read in pages of `page`. */
async function readAll(store: GuardedStore, since?: string, page = 1000): Promise<StoreChange[]> {
  const all: StoreChange[] = [];
  let cursor = since;
  for (;;) {
    const changes = await store.readChanges?.(cursor, page);
    if (!changes || changes.length === 0) return all;
    all.push(...changes);
    cursor = (changes.at(-1) as StoreChange).cursor;
  }
}

async function cursorOf(store: GuardedStore): Promise<string> {
  const cursor = await store.feedCursor?.();
  if (cursor === undefined) throw new Error("the file store has a feed");
  return cursor;
}

const brief = (c: StoreChange) =>
  [c.type, c.pipelineId, c.pipelineName, c.checkpointId ?? "-", c.sequence ?? "-"].join(" ");
const position = (c: StoreChange) => Number(c.cursor.split(":")[1]);

/** Starts a feed writer; `ready` once its store is open, `exited` with its exit code or signal. */
function startWriter(run: string, mode: "put" | "mix" | "whole", count: number, go: string, env = {}) {
  const child = spawn(process.execPath, ["--import", TSX, WRITER, basePath, run, mode, String(count), go], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  children.add(child);
  let out = "";
  let err = "";
  child.stderr.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("ready")) resolve();
    });
    child.on("exit", () => reject(new Error(`writer exited before ready: ${err}`)));
  });
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, stderr: err })),
  );
  const puts = () => out.split("\n").filter((l) => l.startsWith("put ")).length;
  return { child, ready, exited, puts };
}

describe("what each write records", () => {
  it("records every mutation's changes, in order, with names and sequences", async () => {
    const store = await open();
    const start = await store.feedCursor?.();
    expect(start).toMatch(/^[0-9a-f]{16}:0$/);
    await put(store, "r1", 1);
    await put(store, "r1", 2);
    await put(store, "r1", 3);
    await store.updateCheckpoint("r1-2", { status: "failed" });
    expect(await store.deleteCheckpoints("r1", ["r1-1", "r1-3", "nope"])).toBe(2);
    await store.importRun("r2", [cp("r2", 1, "other"), cp("r2", 2, "other")], { replace: false });
    await store.importRun(
      "r2",
      [cp("r2", 5, "other")].map((c) => ({ ...c })),
      { replace: true },
    );
    await store.deleteRun("r1");
    await store.deleteRun("never-written");
    const changes = await readAll(store, start);
    expect(changes.map(brief)).toEqual([
      "checkpoint r1 feed r1-1 1",
      "checkpoint r1 feed r1-2 2",
      "checkpoint r1 feed r1-3 3",
      "status r1 feed r1-2 2",
      "deleted r1 feed r1-1 1",
      "deleted r1 feed r1-3 3",
      "checkpoint r2 other r2-1 1",
      "checkpoint r2 other r2-2 2",
      "deleted r2 other - -",
      "checkpoint r2 other r2-5 5",
      "deleted r1 feed - -",
    ]);
    expect(changes.map(position)).toEqual(changes.map((_, i) => i + 1));
    for (const c of changes) expect(Number.isNaN(Date.parse(c.at))).toBe(false);
    expect(await store.feedCursor?.()).toBe((changes.at(-1) as StoreChange).cursor);
    // Reading from the middle continues after that change; the whole feed from the oldest retained.
    expect((await readAll(store, (changes[3] as StoreChange).cursor)).map(brief)).toEqual(
      changes.slice(4).map(brief),
    );
    expect(await readAll(store)).toEqual(changes);
    // Pages of one return the same changes.
    expect(await readAll(store, start, 1)).toEqual(changes);
  });

  it("records nothing for writes that fail", async () => {
    const store = await open();
    await put(store, "r1", 1);
    await store.importRun("r2", [cp("r2", 1)], { replace: false });
    const before = await store.feedCursor?.();
    await expect(put(store, "r1", 1)).rejects.toBeInstanceOf(CheckpointConflictError);
    const { record, outputs } = cp("r1", 2);
    await expect(
      store.putCheckpoint(record, outputs, undefined, { expectedTip: "other" }),
    ).rejects.toBeInstanceOf(TipMovedError);
    await expect(store.updateCheckpoint("nope", { status: "failed" })).rejects.toBeInstanceOf(
      CheckpointNotFoundError,
    );
    expect(await store.deleteCheckpoints("r1", ["nope"])).toBe(0);
    expect(await store.deleteCheckpoints("absent", ["nope"])).toBe(0);
    await expect(store.importRun("r2", [cp("r2", 7)], { replace: false })).rejects.toBeInstanceOf(
      CheckpointConflictError,
    );
    await store.deleteRun("absent");
    expect(await store.readChanges?.(before, 100)).toEqual([]);
    expect(await store.feedCursor?.()).toBe(before);
    expect(existsSync(join(basePath, PENDING_DIR)) ? readdirSync(join(basePath, PENDING_DIR)) : []).toEqual(
      [],
    );
  });
});

describe("writer processes", () => {
  it("two processes writing different runs at once leave a gap-free feed, each change once", async () => {
    const store = await open();
    const go = join(root, "go");
    const writers = [startWriter("ra", "put", 60, go), startWriter("rb", "put", 60, go)];
    await Promise.all(writers.map((w) => w.ready));
    writeFileSync(go, "");
    for (const w of writers) expect(await w.exited).toMatchObject({ code: 0 });
    const changes = await readAll(store, undefined, 7);
    expect(changes.map(position)).toEqual(changes.map((_, i) => i + 1));
    for (const run of ["ra", "rb"]) {
      const mine = changes.filter((c) => c.pipelineId === run);
      expect(mine.map((c) => c.checkpointId)).toEqual(
        Array.from({ length: 60 }, (_, i) => `${run}-${i + 1}`),
      );
    }
    expect(changes.length).toBe(120);
  });

  it("a writer SIGKILLed at any point: after recovery the feed matches the store exactly", async () => {
    const go = join(root, "go");
    writeFileSync(go, "");
    for (let round = 0; round < 4; round++) {
      const writer = startWriter("rk", "mix", 10_000, go);
      await writer.ready;
      // Killed after a few writes, at whatever step it is in.
      while (writer.puts() < 3 + round) await new Promise((r) => setTimeout(r, 1));
      await new Promise((r) => setTimeout(r, round * 3));
      writer.child.kill("SIGKILL");
      expect((await writer.exited).signal).toBe("SIGKILL");
    }
    const store = await open();
    const changes = await readAll(store);
    expect(changes.map(position)).toEqual(changes.map((_, i) => i + 1));
    // Replaying the feed gives exactly what the store holds, and no change comes twice.
    const present = new Map<string, string>();
    const seen = new Set<string>();
    for (const c of changes) {
      const key = `${c.type} ${c.checkpointId}`;
      expect(seen.has(key), key).toBe(false);
      seen.add(key);
      if (c.type === "checkpoint") present.set(c.checkpointId as string, "completed");
      if (c.type === "status") present.set(c.checkpointId as string, "failed");
      if (c.type === "deleted") present.delete(c.checkpointId as string);
    }
    const stored = new Map<string, string>();
    for (const e of await store.listCheckpoints("rk")) {
      if (e.ok) stored.set(e.metadata.checkpoint_id, e.metadata.status);
    }
    expect(present).toEqual(stored);
    // Every intent settled (a killed writer's temp file may stay until it is a minute old).
    expect(readdirSync(join(basePath, PENDING_DIR)).filter((n) => !n.endsWith(".tmp"))).toEqual([]);
  });

  it("a writer SIGKILLed after each kind of commit, before its change is in the log: the change appears after recovery", async () => {
    const go = join(root, "go");
    writeFileSync(go, "");
    const store = await open();
    const cases: [mode: "mix" | "whole", killAt: number, last: string][] = [
      ["mix", 1, "checkpoint km1 feed km1-1 1"],
      ["mix", 2, "status km2 feed km2-1 1"],
      // put 1, status 1, put 2, status 2, put 3, status 3, then the deletion of 2.
      ["mix", 7, "deleted km7 feed km7-2 2"],
      ["whole", 1, "checkpoint kw1 feed kw1-1 1"],
      ["whole", 2, "deleted kw2 feed - -"],
    ];
    for (const [mode, killAt, last] of cases) {
      const run = `k${mode[0]}${killAt}`;
      const before = await cursorOf(store);
      const writer = startWriter(run, mode, 100, go, { KILL_AT_SETTLE: String(killAt) });
      expect((await writer.exited).signal).toBe("SIGKILL");
      expect(readdirSync(join(basePath, PENDING_DIR))).toContain(`${run}.json`);
      const changes = await readAll(store, before);
      expect(changes.length, run).toBe(killAt);
      expect(changes.at(-1) && brief(changes.at(-1) as StoreChange)).toBe(last);
    }
    expect(readdirSync(join(basePath, PENDING_DIR)).filter((n) => !n.endsWith(".tmp"))).toEqual([]);
  });

  it("an import of 1,100 checkpoints records 1,100 changes under a limit of 256 open files", async () => {
    const go = join(root, "go");
    writeFileSync(go, "");
    const args = [TSX, WRITER, basePath, "big", "import", "1100", go];
    const { stdout } = await run(
      "bash",
      ["-c", 'ulimit -n 256 && exec "$0" --import "$@"', process.execPath, ...args],
      { encoding: "utf8", env: { ...process.env, FSYNC: "1" } },
    );
    expect(stdout).toContain("changes 1100");
  });

  it("waitForChanges wakes on another process's write, and is false on timeout and on abort", async () => {
    const store = await open();
    await put(store, "r0", 1);
    const cursor = await cursorOf(store);
    expect(await store.waitForChanges?.(cursor, 30)).toBe(false);
    const controller = new AbortController();
    const aborted = store.waitForChanges?.(cursor, 60_000, controller.signal);
    controller.abort();
    expect(await aborted).toBe(false);
    const go = join(root, "go");
    const writer = startWriter("rw", "put", 1, go);
    await writer.ready;
    const woken = store.waitForChanges?.(cursor, 60_000);
    writeFileSync(go, "");
    expect(await woken).toBe(true);
    expect((await store.readChanges?.(cursor, 10))?.map(brief)).toEqual(["checkpoint rw feed rw-1 1"]);
    expect(await writer.exited).toMatchObject({ code: 0 });
    // A change already there: true at once, however long the timeout.
    expect(await store.waitForChanges?.(cursor, 60_000)).toBe(true);
    expect(FEED_POLL_MS).toBe(250);
  });
});

/** The pid of a process that has exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout);
}

/** An intent as a writer killed right after its commit leaves it (see `feed-intents.ts`). */
function leaveIntent(run: string, after: number, changes: unknown[]): string {
  const nonce = "00112233aabbccdd";
  const intent = { owner: `${hostname()}:${deadPid()}:${nonce}`, nonce, after, pipelineId: run, changes };
  writeFileSync(join(basePath, PENDING_DIR, `${run}.json`), JSON.stringify(intent));
  return nonce;
}

describe("crash between commit and append", () => {
  it("a committed change whose writer died before appending it appears after recovery, once", async () => {
    const store = await open();
    await put(store, "r1", 1);
    await store.deleteCheckpoints("r1", ["nothing"]);
    const cursor = await cursorOf(store);
    // The commit happened (r1-2 is in place, byte for byte); the append did not.
    const { record } = cp("r1", 2);
    const text = formatCheckpointFile(record.metadata, record.body);
    const file = join(basePath, "r1", `${String(2).padStart(10, "0")}-r1-2.json`);
    writeFileSync(file, text);
    const test = { kind: "content", path: "r1/0000000002-r1-2.json", sha256: sha256(text) };
    const missing = { kind: "content", path: "r1/0000000003-r1-3.json", sha256: sha256("x") };
    leaveIntent("r1", 0, [
      { type: "checkpoint", pipelineName: "feed", checkpointId: "r1-2", sequence: 2, test },
      { type: "checkpoint", pipelineName: "feed", checkpointId: "r1-3", sequence: 3, test: missing },
    ]);
    // A watcher is woken by the abandoned intent; its next read settles it.
    expect(await store.waitForChanges?.(cursor, 60_000)).toBe(true);
    expect((await store.readChanges?.(cursor, 10))?.map(brief)).toEqual(["checkpoint r1 feed r1-2 2"]);
    expect(readdirSync(join(basePath, PENDING_DIR))).toEqual([]);
  });

  it("the run's next writer settles a dead writer's intent before its own change; a partly appended one is not appended twice", async () => {
    const store = await open();
    await put(store, "r1", 1);
    await put(store, "r1", 2);
    const cursor = await cursorOf(store);
    // Killed half-way through its settle: the first of two deletions is in the log already.
    const nonce = leaveIntent("r1", 0, [
      {
        type: "deleted",
        pipelineName: "feed",
        checkpointId: "r1-1",
        sequence: 1,
        test: { kind: "gone", path: "r1/0000000001-r1-1.json" },
      },
      {
        type: "deleted",
        pipelineName: "feed",
        checkpointId: "r1-2",
        sequence: 2,
        test: { kind: "gone", path: "r1/0000000002-r1-2.json" },
      },
    ]);
    await rm(join(basePath, "r1", "0000000001-r1-1.json"));
    await rm(join(basePath, "r1", "0000000002-r1-2.json"));
    const entry = {
      type: "deleted",
      pipelineId: "r1",
      pipelineName: "feed",
      checkpointId: "r1-1",
      sequence: 1,
      at: new Date().toISOString(),
      change: `${nonce}-0`,
    };
    const segment = join(basePath, ".feed", "s00000000");
    writeFileSync(join(segment, "000000000003.json"), JSON.stringify(entry));
    // A new store instance, as a process started later: it writes to the run at once.
    const later = new GuardedStore(new FileStore({ basePath, fsync: false }));
    opened.push(later);
    await put(later, "r1", 3);
    expect((await store.readChanges?.(cursor, 10))?.map(brief)).toEqual([
      "deleted r1 feed r1-1 1",
      "deleted r1 feed r1-2 2",
      "checkpoint r1 feed r1-3 3",
    ]);
  });

  it("a replacing import killed between moving the old run aside and renaming the new one in: finished and recorded by the run's next writer", async () => {
    const store = await open();
    await store.importRun("r1", [cp("r1", 1), cp("r1", 2)], { replace: false });
    const cursor = await cursorOf(store);
    const fresh = [cp("r1", 5), cp("r1", 6)];
    const staged = await stageRun(basePath, "r1", fresh, false);
    const dir = join(basePath, "r1");
    const changes = [
      ...runRemovalChange(basePath, dir, "feed"),
      ...importChanges(
        basePath,
        dir,
        stagedRunFolder(staged),
        staged.nonce,
        "r1",
        fresh.map((c) => c.record.metadata),
      ),
    ];
    leaveIntent("r1", 0, changes);
    writeFileSync(join(staged.folder, "owner.json"), JSON.stringify({ host: hostname(), pid: deadPid() }));
    renameSync(dir, join(basePath, TRASH_DIR, `r1~${staged.nonce}`));
    // Another process, long open, writes to the run next: it settles the intent first.
    const later = new GuardedStore(new FileStore({ basePath, fsync: false }));
    opened.push(later);
    await put(later, "r1", 7);
    expect((await store.readChanges?.(cursor, 10))?.map(brief)).toEqual([
      "deleted r1 feed - -",
      "checkpoint r1 feed r1-5 5",
      "checkpoint r1 feed r1-6 6",
      "checkpoint r1 feed r1-7 7",
    ]);
    expect((await store.listCheckpoints("r1")).map((e) => e.ok && e.metadata.checkpoint_id)).toEqual([
      "r1-5",
      "r1-6",
      "r1-7",
    ]);
    // What the killed import left (its staging folder, the old run aside) goes at the next setup.
    await open();
    expect(readdirSync(join(basePath, STAGING_DIR))).toEqual([]);
    expect(readdirSync(join(basePath, TRASH_DIR))).toEqual([]);
  });

  it("an intent whose change did not commit adds nothing, at setup", async () => {
    const store = await open();
    await put(store, "r1", 1);
    const cursor = await cursorOf(store);
    leaveIntent("r1", 0, [
      {
        type: "status",
        pipelineName: "feed",
        checkpointId: "r1-1",
        sequence: 1,
        test: { kind: "content", path: "r1/0000000001-r1-1.json", sha256: sha256("other") },
      },
    ]);
    await open();
    expect(readdirSync(join(basePath, PENDING_DIR))).toEqual([]);
    expect(await store.readChanges?.(cursor, 10)).toEqual([]);
  });
});

describe("cursors and retention", () => {
  it("trims beyond feedRetention; a cursor before the trim is FeedTrimmedError, never a silent gap", async () => {
    const store = await open({ feedRetention: 100 });
    await put(store, "r1", 1);
    const start = (await cursorOf(store)).replace(/:1$/, ":0");
    for (let i = 2; i <= 260; i++) await put(store, "r1", i);
    await expect(store.readChanges?.("0000000000000000:0", 10)).rejects.toBeInstanceOf(FeedTrimmedError);
    await expect(store.readChanges?.(start, 10)).rejects.toBeInstanceOf(FeedTrimmedError);
    const retained = await readAll(store);
    // Trimmed at 200 (a multiple of 100) down to the newest 100 then; 60 more since.
    expect(retained.map(position)).toEqual(Array.from({ length: 160 }, (_, i) => i + 101));
    await expect(store.readChanges?.(start.replace(/:0$/, ":99"), 10)).rejects.toThrow(
      /removed every change up to position 100/,
    );
    expect((await store.readChanges?.(start.replace(/:0$/, ":100"), 1))?.map(position)).toEqual([101]);
    // Whole segments are removed by folder; the rest file by file.
    const segment = readdirSync(join(basePath, ".feed", "s00000000"));
    expect(segment.length).toBe(160);
  });

  it("a cursor of another store is FeedTrimmedError; a malformed one InvalidArgumentError", async () => {
    const store = await open();
    await put(store, "r1", 1);
    const other = await open({ path: join(root, "other") });
    await put(other, "r1", 1);
    const foreign = await cursorOf(other);
    await expect(store.readChanges?.(foreign, 10)).rejects.toThrow(/belongs to another feed/);
    await expect(store.readChanges?.(foreign, 10)).rejects.toBeInstanceOf(FeedTrimmedError);
    expect(await store.waitForChanges?.(foreign, 60_000)).toBe(true);
    // A cursor past the newest change (the log lost changes in a crash of the machine) is no silent wait.
    const ahead = (await cursorOf(store)).replace(/:\d+$/, ":500");
    await expect(store.readChanges?.(ahead, 10)).rejects.toThrow(/change 500 is not in the feed/);
    for (const bad of ["nope", "0123456789abcdef:-1", "0123456789abcdef:01", "0123456789ABCDEF:1", "x:1"]) {
      await expect(store.readChanges?.(bad, 10)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });

  it("a change removed from the middle of the log is reported, never skipped", async () => {
    const store = await open();
    for (let i = 1; i <= 4; i++) await put(store, "r1", i);
    const [first] = (await store.readChanges?.(undefined, 1)) ?? [];
    await rm(join(basePath, ".feed", "s00000000", "000000000002.json"));
    await expect(store.readChanges?.(first?.cursor, 10)).rejects.toThrow(/change 2 is missing from/);
    // A wider gap too; what comes before it is still delivered, and the gap on the next read.
    await rm(join(basePath, ".feed", "s00000000", "000000000003.json"));
    expect((await store.readChanges?.(undefined, 10))?.map(position)).toEqual([1]);
    await expect(store.readChanges?.(first?.cursor, 10)).rejects.toThrow(/change 2 is missing from/);
  });

  it("a read-only open of a store without a feed starts before every change its feed will hold", async () => {
    const writer = await open();
    await writer.putMeta?.("k", "v"); // the folder exists, with no feed yet
    const reader = await open({ readOnly: true });
    const start = await cursorOf(reader);
    expect(start).toBe("0000000000000000:0");
    expect(await reader.readChanges?.(start, 10)).toEqual([]);
    await put(writer, "r1", 1);
    expect((await reader.readChanges?.(start, 10))?.map(brief)).toEqual(["checkpoint r1 feed r1-1 1"]);
  });

  it("feedRetention is checked, and read from a URL query", async () => {
    expect(() => new FileStore({ basePath, feedRetention: 99 })).toThrow(InvalidConfigError);
    expect(() => new FileStore({ basePath, feedRetention: 100.5 })).toThrow(InvalidConfigError);
    await expect(openStore(`file:${basePath}?feedRetention=5`)).rejects.toThrow(/feedRetention/);
    const store = await openStore(`file:${basePath}?feedRetention=100`);
    expect(store.location).toBe(`file:${basePath}`);
    await store.close();
  });
});

describe("meta values", () => {
  it("are kept outside every run, durable, last write wins", async () => {
    const store = await open();
    expect(await store.getMeta?.("replica.abc")).toBeUndefined();
    await store.putMeta?.("replica.abc", "one");
    await store.putMeta?.("replica.abc", "two");
    await store.putMeta?.("..", "dots");
    await put(store, "r1", 1);
    await store.deleteRun("r1");
    const again = await open();
    expect(await again.getMeta?.("replica.abc")).toBe("two");
    expect(await again.getMeta?.("..")).toBe("dots");
    expect(await again.listPipelineIds()).toEqual([]);
    expect(await readFile(join(basePath, ".meta", "replica.abc.value"), "utf8")).toBe("two");
    // Meta writes are not changes.
    expect((await readAll(again)).map((c) => c.type)).toEqual(["checkpoint", "deleted"]);
  });
});
