/**
 * A checkpoint record of a newer format, on every store: every library path that reads the run
 * (load, resume, validate, export, repair, retention, upgrade) throws `FormatTooNewError`, every CLI
 * command exits 2, and the store is untouched: no quarantine, no deletion, no resume count
 * change, and no resume from an older checkpoint of the run (a newer cairn owns it now).
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointManager,
  FORMAT_VERSION,
  FormatTooNewError,
  Pipeline,
  repairCheckpoint,
} from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { STORE_KINDS } from "../support/at-rest-stores.js";
import { runCairn } from "../support/cli.js";
import { deleteKeyPrefixes, dropSchemas, POSTGRES_URL, REDIS_URL, uniqueName } from "../support/services.js";
import { type StorePlace, setFormatVersion, snapshot } from "../support/too-new.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-too-new-stores-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Opened {
  place: StorePlace;
  /** What a manager is given: a store URL, or the memory store's instance. */
  spec: string | MemoryStore;
  close(): Promise<void>;
}

function open(kind: string): Opened {
  switch (kind) {
    case "memory": {
      const instance = new MemoryStore({ name: uniqueName("too-new") });
      return { place: { kind, instance }, spec: instance, close: async () => {} };
    }
    case "file": {
      const basePath = join(dir, "files");
      return { place: { kind, basePath }, spec: `file:${basePath}`, close: async () => {} };
    }
    case "sqlite": {
      const dbPath = join(dir, "c.db");
      return { place: { kind, dbPath }, spec: `sqlite:${dbPath}`, close: async () => {} };
    }
    case "postgres": {
      const schema = uniqueName("cairn_too_new");
      return {
        place: { kind, schema },
        spec: `${POSTGRES_URL}?schema=${schema}`,
        close: () => dropSchemas(schema),
      };
    }
    default: {
      const prefix = `${uniqueName("cairn-too-new")}:`;
      return {
        place: { kind: "redis", prefix },
        spec: `${REDIS_URL}?keyPrefix=${encodeURIComponent(prefix)}`,
        close: () => deleteKeyPrefixes(prefix),
      };
    }
  }
}

/** Agents that count their calls; `c` fails while `failing` is set. */
function demo(store: CheckpointManager, calls: string[], failing: { on: boolean }) {
  const stage = (name: string) => () => {
    calls.push(name);
    if (name === "c" && failing.on) throw new Error("c is down");
    return { stage: name };
  };
  return new Pipeline({
    name: "demo",
    checkpointEnabled: true,
    checkpointStore: store,
    steps: ["a", "b", "c"].map((name) => ({ name, agent: stage(name) })),
  });
}

/** A failed run of `demo` (a, b done; c failed) whose newest checkpoint a newer cairn wrote. */
async function failedRunWithNewerTip(opened: Opened) {
  const manager = new CheckpointManager({ store: opened.spec });
  try {
    await expect(demo(manager, [], { on: true }).execute()).rejects.toThrow("c is down");
    const [summary] = await manager.listPipelines();
    const pipelineId = summary?.pipelineId as string;
    const listing = await manager.listRun(pipelineId);
    expect(listing.length).toBeGreaterThanOrEqual(2);
    const tip = listing.at(-1);
    const tipId = tip?.ok ? tip.metadata.checkpoint_id : "";
    await setFormatVersion(opened.place, pipelineId, tipId, FORMAT_VERSION + 1);
    return { pipelineId, tipId };
  } finally {
    await manager.close();
  }
}

const tooNew = { code: "CAIRN_FORMAT_TOO_NEW", subject: "checkpoint record", found: FORMAT_VERSION + 1 };

describe.each(STORE_KINDS)("a record of a newer format on the %s store", (kind) => {
  it("the library refuses it everywhere and changes nothing", async () => {
    const opened = open(kind);
    try {
      const { pipelineId, tipId } = await failedRunWithNewerTip(opened);
      const before = await snapshot(opened.place);
      const manager = new CheckpointManager({ store: opened.spec });
      const calls: string[] = [];
      try {
        const attempts: [string, () => Promise<unknown>][] = [
          ["loadCheckpoint", () => manager.loadCheckpoint(tipId)],
          ["loadLatestCheckpoint", () => manager.loadLatestCheckpoint(pipelineId)],
          ["resumePipeline", () => manager.resumePipeline(pipelineId)],
          ["execute runId", () => demo(manager, calls, { on: false }).execute({ runId: pipelineId })],
          ["execute autoResume", () => demo(manager, calls, { on: false }).execute()],
          ["validateCheckpoint", () => manager.validateCheckpoint(tipId)],
          ["validateRun", () => manager.validateRun(pipelineId)],
          ["validateAllRuns", () => manager.validateAllRuns()],
          ["exportCheckpoint", () => manager.exportCheckpoint(tipId, join(dir, "one.json"))],
          ["exportPipeline", () => manager.exportPipeline(pipelineId, join(dir, "run.json"))],
          ["repair", () => repairCheckpoint(manager, tipId, { backupDir: join(dir, "backups") })],
          [
            "repair --force",
            () => repairCheckpoint(manager, tipId, { force: true, backupDir: join(dir, "b") }),
          ],
          ["retention", () => manager.cleanupOldCheckpoints({ retentionDays: 0 })],
          ["retention of the run", () => manager.cleanupOldCheckpoints({ retentionDays: 0, pipelineId })],
          ["cleanup of the run", () => manager.cleanupPipelines([pipelineId], { force: true })],
          ["upgrade", () => manager.upgrade({ all: true })],
          ["upgrade dry run", () => manager.upgrade({ pipelineId }, { dryRun: true })],
        ];
        for (const [what, attempt] of attempts) {
          const error = await attempt().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error, what).toBeInstanceOf(FormatTooNewError);
          expect(error, what).toMatchObject(tooNew);
        }
      } finally {
        await manager.close();
      }
      expect(calls).toEqual([]);
      expect(existsSync(join(dir, "one.json")) || existsSync(join(dir, "run.json"))).toBe(false);
      expect(await snapshot(opened.place)).toEqual(before);
    } finally {
      await opened.close();
    }
  });

  it.skipIf(kind === "memory")("every CLI command exits 2 and changes nothing", async () => {
    const opened = open(kind);
    try {
      const { pipelineId, tipId } = await failedRunWithNewerTip(opened);
      await writeFile(
        join(dir, "p.yaml"),
        `name: demo
steps:
  - { name: a, agent: ./agents.mjs:a }
  - { name: b, agent: ./agents.mjs:b }
  - { name: c, agent: ./agents.mjs:c }
`,
      );
      await writeFile(
        join(dir, "agents.mjs"),
        `import { appendFileSync } from "node:fs";
const stage = (name) => () => { appendFileSync("journal.txt", name + "\\n"); return { stage: name }; };
export const a = stage("a");
export const b = stage("b");
export const c = stage("c");
`,
      );
      const before = await snapshot(opened.place);
      const store = ["--store", opened.spec as string];
      const commands = [
        ["inspect", "--checkpoint-id", tipId],
        ["validate", "--checkpoint-id", tipId],
        ["validate", "--pipeline-id", pipelineId],
        ["validate", "--all"],
        ["list", "--pipeline-id", pipelineId],
        ["export", "--checkpoint-id", tipId, "--output", "one.json"],
        ["export", "--pipeline-id", pipelineId, "--output", "run.json"],
        ["repair", "--checkpoint-id", tipId],
        ["repair", "--checkpoint-id", tipId, "--force"],
        ["cleanup", "--retention-days", "0"],
        ["cleanup", "--retention-days", "0", "--force", "--yes"],
        ["cleanup", "--pipeline-id", pipelineId, "--force", "--yes"],
        ["run", "p.yaml", "--run-id", pipelineId],
        ["run", "p.yaml"],
        ["upgrade", "--all"],
        ["upgrade", "--pipeline-id", pipelineId, "--dry-run"],
      ];
      for (const args of commands) {
        const result = await runCairn([...args, ...store], { cwd: dir });
        expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(2);
        expect(result.stderr, args.join(" ")).toContain("(CAIRN_FORMAT_TOO_NEW)");
        expect(result.stderr, args.join(" ")).toContain(
          `checkpoint record format version ${FORMAT_VERSION + 1} is newer than this cairn supports (${FORMAT_VERSION})`,
        );
      }
      expect(existsSync(join(dir, "journal.txt"))).toBe(false);
      expect(existsSync(join(dir, "one.json")) || existsSync(join(dir, "run.json"))).toBe(false);
      expect(existsSync(join(dir, ".cairn"))).toBe(false);
      expect(await snapshot(opened.place)).toEqual(before);
    } finally {
      await opened.close();
    }
  });
});
