/**
 * The processes of the workers bench: worker children (bench/lib/workers-child.ts) and the
 * in-process baseline child, their JSON event lines collected with the wall clock they were
 * printed at, and the TCP connections each one holds (counted with `ss`, by process id).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { WorkersChildConfig } from "./workers-child.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CHILD = "bench/lib/workers-child.ts";

/** One line a child printed. */
export interface ChildLine {
  e: string;
  t: number;
  pid: number;
  run?: string;
  stage?: number;
  ms?: number;
  message?: string;
  count?: number;
  latencies?: number[];
}

/** A running child and everything it printed so far. */
export interface Child {
  process: ChildProcess;
  pid: number;
  lines: ChildLine[];
  exited: Promise<void>;
}

/** Every line of every child of this bench, in arrival order (the journal). */
export class Journal {
  readonly lines: ChildLine[] = [];
  private waiters: { test: (line: ChildLine) => boolean; resolve: (line: ChildLine) => void }[] = [];

  push(line: ChildLine): void {
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => {
      if (!w.test(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  /** The first line from now on that satisfies `test`; rejects after `timeoutMs`. */
  next(test: (line: ChildLine) => boolean, timeoutMs: number, what: string): Promise<ChildLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`workers bench: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = (line: ChildLine) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiters.push({ test, resolve: done });
    });
  }

  /** How many lines satisfy `test` so far. */
  count(test: (line: ChildLine) => boolean): number {
    return this.lines.filter(test).length;
  }
}

/** Starts a child with `config`; its lines go to `journal`, its stderr to ours (prefixed). */
export function startChild(config: WorkersChildConfig, journal: Journal, log: (m: string) => void): Child {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, JSON.stringify(config)], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines: ChildLine[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (text) => {
    try {
      const line = JSON.parse(text) as ChildLine;
      lines.push(line);
      journal.push(line);
      if (line.e === "error" || line.e === "job_failed")
        log(`worker ${line.pid}: ${line.e}: ${line.message}`);
    } catch {
      log(`child ${child.pid}: ${text}`);
    }
  });
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (text) =>
    log(`child ${child.pid} stderr: ${text}`),
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return { process: child, pid: child.pid ?? -1, lines, exited };
}

/** Waits for `pid`'s line `e`, or fails when the child exits first. */
function lineOf(c: Child, journal: Journal, e: string): Promise<unknown> {
  return Promise.race([
    journal.next((l) => l.pid === c.pid && l.e === e, 90_000, `worker ${c.pid} to print ${e}`),
    c.exited.then(() => {
      throw new Error(`worker ${c.pid} exited before it printed ${e}`);
    }),
  ]);
}

/**
 * Starts `count` worker children: all load at once, then each is told to start its worker and
 * waited for, one at a time when `oneByOne` (pg-boss workers starting together failed with
 * "deadlock detected" in pg-boss's createQueue before wk-pgboss's efa9f7b; the measurement window
 * starts once all are busy, so the order does not change the figures). A child that fails to
 * start is replaced once. On failure, every started child is stopped.
 */
export async function startWorkers(
  count: number,
  config: WorkersChildConfig,
  journal: Journal,
  log: (m: string) => void,
  oneByOne: boolean,
): Promise<Child[]> {
  const children: Child[] = [];
  const spawnLoaded = async () => {
    const c = startChild(config, journal, log);
    children.push(c);
    await lineOf(c, journal, "loaded");
    return c;
  };
  const go = async (c: Child, retry: boolean): Promise<void> => {
    const ready = lineOf(c, journal, "ready");
    c.process.stdin?.write("go\n");
    try {
      await ready;
    } catch (error) {
      if (!retry) throw error;
      log(`worker start failed, replacing it: ${(error as Error).message}`);
      await go(await spawnLoaded(), false);
    }
  };
  try {
    const loaded = await Promise.all(Array.from({ length: count }, spawnLoaded));
    if (oneByOne) for (const c of loaded) await go(c, true);
    else await Promise.all(loaded.map((c) => go(c, true)));
  } catch (error) {
    await stopChildren(children);
    throw error;
  }
  return children.filter((c) => c.process.exitCode === null && c.process.signalCode === null);
}

/** Closes the children gracefully (SIGTERM: the worker drains), SIGKILL after `graceMs`. */
export async function stopChildren(children: Child[], graceMs = 15_000): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      if (c.process.exitCode !== null || c.process.signalCode !== null) return;
      c.process.kill("SIGTERM");
      const timer = setTimeout(() => c.process.kill("SIGKILL"), graceMs);
      await c.exited;
      clearTimeout(timer);
    }),
  );
}

/** Runs the in-process baseline child to its end. */
export async function runInline(config: WorkersChildConfig, journal: Journal, log: (m: string) => void) {
  const child = startChild(config, journal, log);
  await child.exited;
  if (child.process.exitCode !== 0) throw new Error(`inline child exited with ${child.process.exitCode}`);
  return child.lines.filter((l) => l.e === "inline").map((l) => l.ms as number);
}

const run = promisify(execFile);

/** The machine's CPU time counters (/proc/stat: all cores), or undefined off Linux. */
export async function cpuTimes(): Promise<{ busy: number; total: number } | undefined> {
  try {
    const { readFile } = await import("node:fs/promises");
    const line = (await readFile("/proc/stat", "utf8")).split("\n")[0] ?? "";
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** TCP connections `pid` holds to each of `ports` (from `ss -tnp`), or undefined without `ss`. */
export async function connectionsOf(
  pid: number,
  ports: number[],
): Promise<Record<number, number> | undefined> {
  let out: string;
  try {
    out = (await run("ss", ["-tnpH", "state", "established"])).stdout;
  } catch {
    return undefined;
  }
  const counts: Record<number, number> = Object.fromEntries(ports.map((p) => [p, 0]));
  for (const line of out.split("\n")) {
    if (!line.includes(`pid=${pid},`)) continue;
    const peer = line.trim().split(/\s+/)[3] ?? "";
    const port = Number(peer.slice(peer.lastIndexOf(":") + 1));
    if (port in counts) counts[port] = (counts[port] ?? 0) + 1;
  }
  return counts;
}
