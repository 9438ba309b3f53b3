/**
 * The feed across a crashing watcher, on every store with a feed: a writer process makes
 * checkpoints, status changes and deletions on four runs while a `cairn watch --json` process is
 * SIGKILLed and restarted from the cursor of the last line it printed, several times. In the end
 * the changes delivered, duplicates aside (a re-delivery carries the same cursor), are the store's
 * whole history in order, each equal to the store's own record of it: no gap, nothing reordered.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { openStore } from "../../src/stores/registry.js";
import type { StoreChange } from "../../src/stores/types.js";
import { CLI_PATH } from "../support/cli.js";
import { storeUrls } from "../support/store-urls.js";

const WRITER = fileURLToPath(new URL("./fixtures/feed-writer.mjs", import.meta.url));
/** Changes the writer makes, and its pause between two (long enough for several kills). */
const OPS = 240;
const WRITER_DELAY_MS = 20;
/** Kills made while the writer still writes, at least. */
const MIN_KILLS = 3;

const { urls } = storeUrls("feed-kill");
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  children.clear();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A child process and its complete stdout lines so far (a line cut by SIGKILL is never one). */
function spawnLines(args: string[]) {
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, CAIRN_STORE: undefined, CAIRN_DEBUG: undefined },
  });
  children.add(child);
  const lines: string[] = [];
  let pending = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      lines.push(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  return { child, lines, exited, stderr: () => stderr };
}

/** A JSON line of `cairn watch` as the store's change: absent fields are null in the line. */
function asChange(line: string): StoreChange {
  const parsed = JSON.parse(line) as Record<string, unknown>;
  const change: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) if (value !== null) change[key] = value;
  return change as unknown as StoreChange;
}

/** Every change the store retains, oldest first. */
async function history(store: Awaited<ReturnType<typeof openStore>>): Promise<StoreChange[]> {
  const all: StoreChange[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await (store.readChanges as NonNullable<typeof store.readChanges>)(cursor, 1000);
    all.push(...page);
    if (page.length === 0) return all;
    cursor = page.at(-1)?.cursor;
  }
}

/** One watcher process's run: where it started and what it delivered, in order. */
interface Session {
  since: string | undefined;
  delivered: StoreChange[];
  killed: boolean;
}

describe("a watcher SIGKILLed and restarted from its last cursor", () => {
  for (const name of ["file", "sqlite", "postgres", "redis"]) {
    it.skipIf(urls[name] === undefined)(
      `gets the whole history of the ${name} store, in order, nothing missing`,
      { timeout: 180_000 },
      async () => {
        const url = (urls[name] as () => string)();
        const store = await openStore(url);
        await store.setup();
        try {
          const sessions: Session[] = [];
          let since: string | undefined;
          /** Starts a watcher after `since` (from the start for the first); returns its session. */
          const startWatcher = () => {
            const args = [
              "watch",
              "--json",
              "--store",
              url,
              ...(since ? ["--since", since] : ["--from-start"]),
            ];
            const spawned = spawnLines([CLI_PATH, ...args]);
            const session: Session = { since, delivered: [], killed: false };
            sessions.push(session);
            return { ...spawned, session };
          };
          const collect = (watcher: ReturnType<typeof startWatcher>) => {
            watcher.session.delivered = watcher.lines.map(asChange);
            since = watcher.session.delivered.at(-1)?.cursor ?? since;
          };

          const writer = spawnLines([WRITER, url, String(OPS), String(WRITER_DELAY_MS)]);
          const writerDone = writer.exited;
          let writing = true;
          void writerDone.then(() => {
            writing = false;
          });

          // The file store's folder exists from the first write on: the watcher, a reader, starts then.
          while (writer.lines.length === 0) {
            if (writer.child.exitCode !== null) throw new Error(`the writer failed: ${writer.stderr()}`);
            await sleep(5);
          }

          // Kill the watcher at random moments while the writer writes, each time after it
          // printed something new (so every restart starts further on).
          let kills = 0;
          let watcher = startWatcher();
          while (writing) {
            const printed = watcher.lines.length;
            while (writing && watcher.lines.length === printed && watcher.child.exitCode === null)
              await sleep(5);
            if (watcher.child.exitCode !== null)
              throw new Error(`the watcher exited by itself: ${watcher.stderr()}`);
            if (!writing) break;
            await sleep(20 + Math.floor(Math.random() * 200));
            watcher.child.kill("SIGKILL");
            await watcher.exited;
            watcher.session.killed = true;
            collect(watcher);
            if (writing) kills++;
            watcher = startWatcher();
          }
          const wrote = await writerDone;
          expect(wrote.code, writer.stderr()).toBe(0);
          expect(writer.lines.at(-1)).toBe('{"done":true}');
          expect(kills).toBeGreaterThanOrEqual(MIN_KILLS);

          // One more change, made here: the last watcher prints it once it has caught up (and so
          // is surely running, its signal handlers in place), then stops cleanly on SIGTERM.
          const sentinel = new CheckpointManager({ store: url });
          await sentinel.createCheckpoint({ pipelineId: "sentinel", stageName: "last", stageIndex: 0 });
          await sentinel.close();
          const deadline = Date.now() + 60_000;
          while (!watcher.lines.some((line) => asChange(line).pipelineId === "sentinel")) {
            if (watcher.child.exitCode !== null) throw new Error(`the watcher exited: ${watcher.stderr()}`);
            if (Date.now() > deadline)
              throw new Error(
                `the last watcher, from ${since}, never printed the last change: ${watcher.lines.length} lines, the last ${watcher.lines.at(-1)}; ${watcher.stderr()}`,
              );
            await sleep(20);
          }
          watcher.child.kill("SIGTERM");
          expect((await watcher.exited).code).toBe(0);
          collect(watcher);

          const all = await history(store);
          // Four runs, every kind of change, and nothing trimmed: the whole history is retained.
          expect(all.length).toBe(OPS + 1);
          expect(new Set(all.map((c) => c.type))).toEqual(new Set(["checkpoint", "status", "deleted"]));
          expect(all.some((c) => c.type === "deleted" && c.checkpointId === undefined)).toBe(true);
          const position = new Map(all.map((c, i) => [c.cursor, i]));

          // Each session starts right after its cursor and goes on in the store's order.
          for (const session of sessions) {
            const start = session.since === undefined ? 0 : (position.get(session.since) as number) + 1;
            expect(session.delivered).toEqual(all.slice(start, start + session.delivered.length));
          }
          // Together, duplicates (same cursor, same change) aside, they are the whole history.
          const seen = new Map<string, StoreChange>();
          for (const change of sessions.flatMap((s) => s.delivered)) {
            const before = seen.get(change.cursor);
            if (before) expect(change).toEqual(before);
            else seen.set(change.cursor, change);
          }
          expect([...seen.values()]).toEqual(all);
          // Per run, too: in the order the writer made the changes.
          for (const run of ["run-a", "run-b", "run-c", "run-d", "sentinel"])
            expect([...seen.values()].filter((c) => c.pipelineId === run).map((c) => c.cursor)).toEqual(
              all.filter((c) => c.pipelineId === run).map((c) => c.cursor),
            );
        } finally {
          await store.close();
        }
      },
    );
  }
});
