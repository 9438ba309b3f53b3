/**
 * `/metrics`: real pipeline runs with the console's Prometheus sink registered give counters in
 * the text exposition: in a child process without `@opentelemetry/api` (and with it switched
 * off), and in this process (API loaded, no SDK), where a resume passes over a corrupt record.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline, StageFailedError } from "../../src/index.js";
import { resetOtelForTests } from "../../src/telemetry/index.js";
import { createPrometheus } from "../../src/ui/metrics.js";
import { runWithoutPackages } from "../support/missing-package.js";

const ROOT = JSON.stringify(new URL("../../src/index.ts", import.meta.url).href);
const METRICS = JSON.stringify(new URL("../../src/ui/metrics.ts", import.meta.url).href);

/** A run that fails at its third stage once, then resumes; prints the exposition text. */
const SCRIPT = `const { Pipeline } = await import(${ROOT});
  const { createPrometheus } = await import(${METRICS});
  const prom = createPrometheus({ defaultMetrics: false });
  prom.register();
  let calls = 0;
  const pipeline = new Pipeline({
    name: "metered", checkpointEnabled: true, checkpointStrategy: "memory",
    steps: ["a", "b", "c"].map((name) => ({ name, agent: () => {
      if (name === "c" && calls++ === 0) throw new Error("c: flaky");
      return { name, rows: [1, 2, 3] };
    } })),
  });
  await pipeline.execute().catch(() => undefined);
  await pipeline.execute();
  console.log(await prom.text());`;

/** The value of the series `name{labels}` in an exposition text (undefined when absent). */
function value(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const LABELS = '{pipeline="metered",store="memory"}';

function expectRunCounted(text: string): void {
  expect(value(text, `cairn_checkpoints_written_total${LABELS}`)).toBeGreaterThan(0);
  expect(value(text, `cairn_checkpoint_bytes_written_total${LABELS}`)).toBeGreaterThan(0);
  expect(value(text, `cairn_checkpoint_write_duration_seconds_count${LABELS}`)).toBeGreaterThan(0);
  expect(value(text, `cairn_resumes_total${LABELS}`)).toBe(1);
  expect(text).toMatch(/^cairn_checkpoint_load_duration_seconds_count\{.*store="memory".*\} [1-9]/m);
}

describe("metrics without OpenTelemetry", () => {
  it("counts a real run and its resume when @opentelemetry/api is not installed", async () => {
    const text = await runWithoutPackages(SCRIPT, {
      missing: ["@opentelemetry/api"],
      env: { ...process.env, CAIRN_TELEMETRY: "" },
    });
    expectRunCounted(text);
  }, 60_000);

  it("counts them with CAIRN_TELEMETRY=off (the API never loaded)", async () => {
    const text = await runWithoutPackages(SCRIPT, {
      announce: { "@opentelemetry/api": "otel-api-loaded" },
      env: { ...process.env, CAIRN_TELEMETRY: "off" },
    });
    expect(text).not.toContain("otel-api-loaded");
    expectRunCounted(text);
  }, 60_000);
});

describe("metrics in this process", () => {
  let dir: string;
  let unregister: (() => void) | undefined;
  beforeEach(async () => {
    resetOtelForTests();
    dir = await mkdtemp(join(tmpdir(), "cairn-ui-metrics-"));
  });
  afterEach(async () => {
    unregister?.();
    unregister = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("counts corrupt records a resume passes over, and the feed's changes; unregistered, nothing more", async () => {
    const prom = createPrometheus();
    unregister = prom.register();
    const dbPath = join(dir, "c.db");
    const manager = new CheckpointManager({ store: `sqlite:${dbPath}` });
    let calls = 0;
    const pipeline = new Pipeline({
      name: "salvaged",
      checkpointEnabled: true,
      checkpointStore: manager,
      steps: ["a", "b", "c"].map((name) => ({
        name,
        agent: () => {
          if (name === "c" && calls++ === 0) throw new Error("c: flaky");
          return { name };
        },
      })),
    });
    try {
      const failed = await pipeline.execute().catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(StageFailedError);
      const runId = (failed as StageFailedError).pipelineId;
      const newest = (await manager.getCheckpointHistory(runId))[0]?.checkpointId as string;
      const db = new Database(dbPath);
      db.prepare("UPDATE cairn_checkpoints SET body = body || ' ' WHERE checkpoint_id = ?").run(newest);
      db.close();
      expect((await pipeline.execute()).status).toBe("completed");
    } finally {
      await manager.close();
    }
    prom.feedChange("checkpoint");
    prom.feedChange("checkpoint");
    const text = await prom.text();
    const labels = '{pipeline="salvaged",store="sqlite"}';
    expect(value(text, `cairn_corrupt_records_found_total${labels}`)).toBeGreaterThanOrEqual(1);
    expect(value(text, `cairn_resumes_total${labels}`)).toBe(1);
    expect(value(text, 'cairn_ui_feed_changes_total{type="checkpoint"}')).toBe(2);
    expect(text).toContain("cairn_ui_process_cpu_user_seconds_total");
    expect(prom.contentType).toContain("text/plain");

    const written = value(text, `cairn_checkpoints_written_total${labels}`) as number;
    expect(written).toBeGreaterThan(0);
    unregister();
    unregister = undefined;
    const manager2 = new CheckpointManager({ store: `sqlite:${dbPath}` });
    try {
      await new Pipeline({
        name: "salvaged",
        checkpointEnabled: true,
        checkpointStore: manager2,
        steps: [{ name: "a", agent: () => ({}) }],
      }).execute({ resume: false });
    } finally {
      await manager2.close();
    }
    expect(value(await prom.text(), `cairn_checkpoints_written_total${labels}`)).toBe(written);
  });
});
