/**
 * File-store leases between processes that do not share a clock: two runners on one shared
 * folder, one of them on a "host" whose wall clock is 60 s off (a preload skews `Date.now` and
 * `new Date()` and renames the host), and a holder frozen with SIGSTOP past its lease. Expiry is
 * decided by what the contender observes on its own monotonic clock, so the run is executed by
 * one runner at a time and its chain stays linear; a frozen holder that wakes up is fenced.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PIPELINE_COMPLETE_STAGE } from "../../src/core/types.js";
import { FileStore } from "../../src/stores/file/file-store.js";
import type { StoredMetadata } from "../../src/stores/types.js";

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const SKEW = pathToFileURL(fileURLToPath(new URL("./fixtures/skewed-host.mjs", import.meta.url))).href;
const RUNNER = fileURLToPath(new URL("./fixtures/lease-runner.ts", import.meta.url));
const STAGES = ["s1", "s2", "s3"];

interface Report {
  event: string;
  tag: string;
  stage?: string;
  name?: string;
  code?: string;
  message?: string;
}

interface Runner {
  child: ChildProcess;
  /** Resolves with the first report of this event. */
  waitFor(event: string): Promise<Report>;
  /** Resolves with the exit code and the last report once the child exits. */
  finished: Promise<{ code: number | null; last: Report | undefined; stderr: string }>;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-lease-skew-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function startRunner(
  config: { tag: string; leaseTtlMs: number; stageMs: number; retryForMs: number },
  host?: { skewMs: number; hostname: string },
): Runner {
  const full = { basePath: join(dir, "store"), runId: "shared_run", log: join(dir, "stages.log"), ...config };
  const env = { ...process.env };
  if (host) {
    env.CAIRN_TEST_SKEW_MS = String(host.skewMs);
    env.CAIRN_TEST_HOSTNAME = host.hostname;
  }
  const preload = host ? ["--import", SKEW] : [];
  const child = spawn(process.execPath, [...preload, "--import", TSX, RUNNER, JSON.stringify(full)], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
  });
  const reports: Report[] = [];
  const waiters: { event: string; resolve: (r: Report) => void }[] = [];
  let buffered = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      const report = JSON.parse(line) as Report;
      reports.push(report);
      for (const w of waiters.filter((x) => x.event === report.event)) w.resolve(report);
    }
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const finished = new Promise<{ code: number | null; last: Report | undefined; stderr: string }>(
    (resolve) => {
      child.on("exit", (code) => resolve({ code, last: reports.at(-1), stderr }));
    },
  );
  const waitFor = (event: string) =>
    new Promise<Report>((resolve, reject) => {
      const seen = reports.find((r) => r.event === event);
      if (seen) return resolve(seen);
      waiters.push({ event, resolve });
      void finished.then((f) =>
        reject(
          new Error(
            `${config.tag} exited (${f.code}) before "${event}": ${JSON.stringify(f.last)} ${f.stderr}`,
          ),
        ),
      );
    });
  return { child, waitFor, finished };
}

/** Stage executions from the shared log; throws if two ever overlapped. */
async function stageRuns(): Promise<string[]> {
  const lines = (await readFile(join(dir, "stages.log"), "utf8")).trim().split("\n");
  const runs: string[] = [];
  let running: string | undefined;
  for (const line of lines) {
    const [kind, stage, tag] = line.split(" ");
    const who = `${stage} by ${tag}`;
    if (kind === "start") {
      if (running !== undefined)
        throw new Error(`${who} started while ${running} was running:\n${lines.join("\n")}`);
      running = who;
      runs.push(who);
    } else running = undefined;
  }
  return runs;
}

/** The run's checkpoints, checked to be one chain: sequences 1..n, each the child of the one before. */
async function linearChain(): Promise<StoredMetadata[]> {
  const store = new FileStore({ basePath: join(dir, "store") });
  try {
    const listed = await store.listCheckpoints("shared_run");
    const chain = listed.map((e) => (e.ok ? e.metadata : undefined));
    expect(chain.every((m) => m !== undefined)).toBe(true);
    const metadata = chain as StoredMetadata[];
    expect(metadata.map((m) => m.sequence)).toEqual(metadata.map((_, i) => i + 1));
    expect(metadata.map((m) => m.parent_checkpoint_id)).toEqual([
      null,
      ...metadata.slice(0, -1).map((m) => m.checkpoint_id),
    ]);
    return metadata;
  } finally {
    await store.close();
  }
}

describe("file-store leases across skewed clocks", () => {
  it.each([
    { skewed: "contender", skewMs: 60_000 },
    { skewed: "holder", skewMs: -60_000 },
  ])(
    "runs each stage once at a time when the $skewed's clock is off by $skewMs ms",
    async ({ skewed, skewMs }) => {
      const leaseTtlMs = 1000;
      const hostOf = (who: string) => ({ skewMs: who === skewed ? skewMs : 0, hostname: `host-${who}` });
      const holder = startRunner(
        { tag: "holder", leaseTtlMs, stageMs: 1500, retryForMs: 0 },
        hostOf("holder"),
      );
      await holder.waitFor("stage");
      // The holder is inside s1 and renewing its lease; the contender keeps trying to run the run.
      const contender = startRunner(
        { tag: "contender", leaseTtlMs, stageMs: 1500, retryForMs: 60_000 },
        hostOf("contender"),
      );
      const [h, c] = await Promise.all([holder.finished, contender.finished]);
      expect(h.code, `holder: ${JSON.stringify(h.last)} ${h.stderr}`).toBe(0);
      expect(c.code, `contender: ${JSON.stringify(c.last)} ${c.stderr}`).toBe(0);

      // Never two stages at once; each stage ran once, by the holder; the contender found the run done.
      expect(await stageRuns()).toEqual(STAGES.map((s) => `${s} by holder`));
      expect(c.last).toMatchObject({ event: "result", skipped: STAGES, created: 0 });
      const chain = await linearChain();
      expect(chain.map((m) => m.stage_name)).toEqual([...STAGES, PIPELINE_COMPLETE_STAGE]);
    },
    120_000,
  );

  it("fences a holder frozen past its lease: the contender takes over, the holder's write is refused", async () => {
    const leaseTtlMs = 3000;
    const holder = startRunner({ tag: "holder", leaseTtlMs, stageMs: 1000, retryForMs: 0 });
    await holder.waitFor("stage");
    holder.child.kill("SIGSTOP");
    const stoppedAt = performance.now();
    try {
      const contender = startRunner({ tag: "contender", leaseTtlMs, stageMs: 200, retryForMs: 60_000 });
      const c = await contender.finished;
      expect(c.code, `contender: ${JSON.stringify(c.last)} ${c.stderr}`).toBe(0);
      expect(c.last).toMatchObject({ event: "result", skipped: [] });
      // Frozen for at least 6 s in all, twice its lease (scenario set-up, not an assertion).
      await new Promise((r) => setTimeout(r, Math.max(0, 6000 - (performance.now() - stoppedAt))));
    } finally {
      holder.child.kill("SIGCONT");
    }
    const h = await holder.finished;
    expect(h.code, `holder: ${JSON.stringify(h.last)} ${h.stderr}`).toBe(1);
    expect(h.last).toMatchObject({ event: "error", name: "LeaseLostError", code: "CAIRN_LEASE_LOST" });

    // The holder's s1 was cut short by the freeze (its end overlaps the contender's run in wall
    // time, frozen); the contender ran every stage; nothing the holder did got into the chain.
    const chain = await linearChain();
    expect(chain.map((m) => m.stage_name)).toEqual([...STAGES, PIPELINE_COMPLETE_STAGE]);
    const log = await readFile(join(dir, "stages.log"), "utf8");
    expect(log.split("\n").filter((l) => l.startsWith("start"))).toEqual([
      "start s1 holder",
      ...STAGES.map((s) => `start ${s} contender`),
    ]);
  }, 120_000);
});

describe("file-store leases and run locks judged by observation, in one process", () => {
  let basePath: string;
  let store: FileStore;
  beforeEach(async () => {
    basePath = join(dir, "store");
    await mkdir(join(basePath, ".leases"), { recursive: true });
    store = new FileStore({ basePath, fsync: false });
  });
  afterEach(async () => {
    await store.close();
  });

  const leaseFile = () => join(basePath, ".leases", "run1.json");
  /** A lease as another host writes it: its expiry, by its own clock, already in the past here. */
  const writeForeignLease = (version: string) =>
    writeFile(
      leaseFile(),
      JSON.stringify({
        owner: "far-host:1:x",
        token: 4,
        expires_at: Date.now() - 60_000,
        ttl_ms: 500,
        version,
      }),
    );

  it("does not take a lease whose holder's clock says it ended while the holder keeps renewing it", async () => {
    await writeForeignLease("v1");
    const attempt = store.acquireLease("run1", "runner-a", 10_000);
    // The holder renews (a new version) while this process is watching its lease.
    await new Promise((r) => setTimeout(r, 100));
    await writeForeignLease("v2");
    const result = await attempt;
    expect(result.acquired).toBe(false);
    if (!result.acquired) expect(result.holder).toMatchObject({ owner: "far-host:1:x", token: 4 });
  });

  it("takes over a lease seen unchanged for its TTL, whatever its holder's clock said, with a larger token", async () => {
    await writeForeignLease("v1");
    const result = await store.acquireLease("run1", "runner-a", 10_000);
    expect(result.acquired).toBe(true);
    if (result.acquired) expect(result.lease.token).toBe(5);
  });

  it("never breaks another host's run lock by its age", async () => {
    const lock = join(basePath, ".leases", "run1.lock");
    const held = JSON.stringify({ host: "far-host", pid: 1, nonce: "far" });
    await writeFile(lock, held);
    const anHourAgo = new Date(Date.now() - 3_600_000);
    await utimes(lock, anHourAgo, anHourAgo);
    const attempt = store.acquireLease("run1", "runner-a", 10_000);
    await new Promise((r) => setTimeout(r, 300));
    // Still the other host's lock: an old mtime says nothing about a holder on another clock.
    expect(await readFile(lock, "utf8")).toBe(held);
    await rm(lock);
    expect((await attempt).acquired).toBe(true);
  });

  it("breaks another host's run lock once it has stayed the same for the stale timeout", async () => {
    await writeFile(
      join(basePath, ".leases", "run1.lock"),
      JSON.stringify({ host: "far-host", pid: 1, nonce: "abandoned" }),
    );
    expect((await store.acquireLease("run1", "runner-a", 10_000)).acquired).toBe(true);
    expect(await readdir(join(basePath, ".leases"))).toEqual(["run1.json"]);
  }, 60_000);
});
