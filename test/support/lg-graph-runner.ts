/**
 * The harness of the CairnSaver kill tests: starts `lg-graph-process.ts` children (with tsx, as
 * the worker tests do), a temporary folder per test, a fresh URL per store (PostgreSQL schema
 * and Redis key prefix dropped after the file), and the journal of node entries. Registers its
 * own hooks; kills only the processes it started.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeEach } from "vitest";
import type { GraphOutcome } from "./lg-graph.js";
import type { GraphProcessConfig } from "./lg-graph-process.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "./services.js";

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const SCRIPT = fileURLToPath(new URL("./lg-graph-process.ts", import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A line the process printed. */
export type GraphLine =
  | ({ event: "outcome"; pid: number } & GraphOutcome)
  | { event: "hang"; pid: number; node: string }
  | { event: "error"; pid: number; message: string }
  /** The process died as `dieAtCall` asked (no line printed: made by the harness). */
  | { event: "killed"; pid: number };

/** The outcome a process printed; anything else fails the test with the line. */
export function outcomeOf(line: GraphLine): GraphOutcome {
  if (line.event !== "outcome") throw new Error(`expected an outcome, got ${JSON.stringify(line)}`);
  return { values: line.values, next: line.next, interrupts: line.interrupts };
}

/** A store the tests run on; `url()` makes a fresh one. */
export interface GraphStore {
  name: string;
  url: () => string;
  skip?: boolean;
}

/** The harness of one test file; `tag` names its folders, schemas and prefixes. */
export function graphProcesses(tag: string) {
  const schemas: string[] = [];
  const prefixes: string[] = [];
  const children = new Set<ChildProcess>();
  let folder: string | undefined;
  const dir = () => {
    if (!folder) throw new Error("graphProcesses: the folder exists from beforeEach on");
    return folder;
  };
  const journal = () => join(dir(), "journal");
  afterAll(async () => {
    await dropSchemas(...schemas);
    await deleteKeyPrefixes(...prefixes);
  });
  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), `cairn-${tag}-`));
  });
  afterEach(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    children.clear();
    await rm(dir(), { recursive: true, force: true });
  });

  /**
   * Runs one process to its end (or, with `hang`, until a node hangs, then SIGKILLs it; with
   * `dieAtCall`, a SIGKILL it sent itself is `killed`).
   */
  async function runProcess(config: Omit<GraphProcessConfig, "journal">): Promise<GraphLine> {
    const child = spawn(
      process.execPath,
      ["--import", TSX, SCRIPT, JSON.stringify({ ...config, journal: journal() })],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    children.add(child);
    const lines: GraphLine[] = [];
    let pending = "";
    let stderr = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith("{")) lines.push(JSON.parse(line) as GraphLine);
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
    const deadline = Date.now() + 25_000;
    for (;;) {
      const last = lines.at(-1);
      if (last?.event === "hang") {
        child.kill("SIGKILL");
        await exited;
        return last;
      }
      if (child.exitCode !== null || child.signalCode !== null) {
        await exited;
        if (config.dieAtCall !== undefined && child.signalCode === "SIGKILL")
          return { event: "killed", pid: child.pid ?? 0 };
        const end = lines.at(-1);
        if (end?.event !== "outcome")
          throw new Error(`graph process failed: ${JSON.stringify(lines)}\n${stderr}`);
        return end;
      }
      if (Date.now() > deadline)
        throw new Error(`graph process timed out: ${JSON.stringify(lines)}\n${stderr}`);
      await sleep(5);
    }
  }

  /** How often each node was entered, over every process of the test. */
  async function entries(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const line of (await readFile(journal(), "utf8")).split("\n")) {
      const node = line.split(" ")[0];
      if (node) counts[node] = (counts[node] ?? 0) + 1;
    }
    return counts;
  }

  const sqlTag = tag.replace(/-/g, "");
  const stores: GraphStore[] = [
    { name: "sqlite", url: () => `sqlite:${join(dir(), "c.db")}` },
    {
      name: "postgres",
      url: () => {
        const schema = uniqueName(`cairn_${sqlTag}`);
        schemas.push(schema);
        return `${POSTGRES_URL}?schema=${schema}`;
      },
      skip: !postgresUp,
    },
    { name: "file", url: () => `file:${join(dir(), "store")}` },
    {
      name: "redis",
      url: () => {
        const prefix = `${uniqueName(`cairn-${sqlTag}`)}:`;
        prefixes.push(prefix);
        return `${REDIS_URL}?keyPrefix=${prefix}`;
      },
      skip: !redisUp,
    },
  ];
  return { dir, runProcess, entries, stores };
}
