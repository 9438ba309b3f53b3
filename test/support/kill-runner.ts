/**
 * The harness of the SIGKILL tests that run a pipeline in child processes (`dag-sigkill`,
 * `durability-sigkill`): a runner script printing one JSON report per line, a temporary folder
 * per test, every store's URL (PostgreSQL, Redis, s3 on Ceph RGW and azure on azurite only when
 * their server is up; the object stores' bucket and container go after the file), and the
 * agents' side-effect journal. Registers its own hooks; kills only the processes it started.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach } from "vitest";
import { azureUp, azureUrl, objectPrefix, s3Up, s3Url } from "./object-servers.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "./services.js";

/** One line a runner prints. */
export interface Report {
  event: "hang" | "checkpoint" | "result" | "error";
  pid: number;
  stage?: string;
  pipelineId?: string;
  status?: string;
  skippedStages?: string[];
  outputs?: Record<string, unknown>;
  message?: string;
}

/** A store the tests run on; `url()` makes a fresh one (a schema or key prefix dropped after the file). */
export interface KillStore {
  name: string;
  url: () => string;
  skip?: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The harness for one test file: `runner` is the script's path, `tag` names its folders, schemas
 * and prefixes, and `defaults` are merged under every runner's configuration.
 */
export function killRunners(runner: string, tag: string, defaults: Record<string, unknown> = {}) {
  const schemas: string[] = [];
  const prefixes: string[] = [];
  const children = new Set<ChildProcess>();
  let folder: string | undefined;
  const dir = () => {
    if (!folder) throw new Error("killRunners: the folder exists from beforeEach on");
    return folder;
  };
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

  /** Starts a runner; `reports` fills as it prints; `exited` resolves when it is gone. */
  function startRunner(config: Record<string, unknown>) {
    const child = spawn(process.execPath, [runner, JSON.stringify({ ...defaults, ...config })], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    const reports: Report[] = [];
    let pending = "";
    let stderr = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith("{")) reports.push(JSON.parse(line) as Report);
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
    const describeIt = () => `${JSON.stringify(reports)}\n${stderr}`;
    return {
      child,
      reports,
      exited,
      /** Waits until `ready` holds over the reports; fails if the runner exits first. */
      async until(ready: (r: Report[]) => boolean): Promise<void> {
        const deadline = Date.now() + 20_000;
        while (!ready(reports)) {
          if (child.exitCode !== null) throw new Error(`runner exited early: ${describeIt()}`);
          if (Date.now() > deadline) throw new Error(`runner never got there: ${describeIt()}`);
          await sleep(2);
        }
      },
      describe: describeIt,
    };
  }

  const sqlTag = tag.replace(/-/g, "");
  const stores: KillStore[] = [
    { name: "file", url: () => `file:${join(dir(), "store")}` },
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
    {
      name: "redis",
      url: () => {
        const prefix = `${uniqueName(`cairn-${sqlTag}`)}:`;
        prefixes.push(prefix);
        return `${REDIS_URL}?keyPrefix=${prefix}`;
      },
      skip: !redisUp,
    },
    { name: "s3", url: () => s3Url(objectPrefix(tag)), skip: !s3Up },
    { name: "azure", url: () => azureUrl(objectPrefix(tag)), skip: !azureUp },
  ];
  return { dir, startRunner, stores };
}

/** How often each stage's agent journaled `kind` (start or done). */
export async function journalCounts(
  journal: string,
  kind: "start" | "done",
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const line of (await readFile(journal, "utf8")).split("\n")) {
    const [k, stage] = line.split(" ");
    if (k === kind && stage) counts[stage] = (counts[stage] ?? 0) + 1;
  }
  return counts;
}
