/**
 * `cairn replicate` between every ordered pair of the stores a process can reach (file, sqlite,
 * postgres and redis when their servers are up): after writes, a status change, a retention
 * deletion and a deleted run on the source, replicated in two passes, `cairn compare` of source
 * and target reports no difference and `cairn validate --all` passes on the target.
 */
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { openStore } from "../../src/stores/registry.js";
import { writeRun, writeStage } from "../support/at-rest-runs.js";
import { runCairn } from "../support/cli.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "../support/services.js";
import { storeUrls } from "../support/store-urls.js";

const { dir } = storeUrls("replicate-pairs");
const schemas: string[] = [];
const prefixes: string[] = [];
afterAll(async () => {
  await dropSchemas(...schemas);
  await deleteKeyPrefixes(...prefixes);
});

let n = 0;
/** A fresh, empty store of each kind. */
const fresh: Record<string, () => string> = {
  file: () => `file:${join(dir(), `f-${++n}`)}`,
  sqlite: () => `sqlite:${join(dir(), `s-${++n}.db`)}`,
  ...(postgresUp
    ? {
        postgres: () => {
          const schema = uniqueName("cairn_pairs");
          schemas.push(schema);
          return `${POSTGRES_URL}?schema=${schema}`;
        },
      }
    : {}),
  ...(redisUp
    ? {
        redis: () => {
          const prefix = `${uniqueName("cairn-pairs")}:`;
          prefixes.push(prefix);
          return `${REDIS_URL}?keyPrefix=${prefix}`;
        },
      }
    : {}),
};
const kinds = Object.keys(fresh);
const pairs = kinds.flatMap((from) => kinds.filter((to) => to !== from).map((to) => [from, to] as const));

const cairn = (...args: string[]) => runCairn(args, { cwd: dir() });
const STAGES = ["fetch", "parse", "score", "report"];

describe.each(pairs)("%s → %s", (fromKind, toKind) => {
  it("compare finds no difference and validate passes after writes, status changes and deletions", {
    timeout: 120_000,
  }, async () => {
    const from = (fresh[fromKind] as () => string)();
    const to = (fresh[toKind] as () => string)();
    const manager = new CheckpointManager({ store: from });
    try {
      const r1 = await writeRun(manager, "run-1", STAGES.slice(0, 2));
      const r2 = await writeRun(manager, "run-2", STAGES);
      await writeRun(manager, "run-3", STAGES.slice(0, 2));
      const first = await cairn("replicate", "--from", from, "--to", to, "--json");
      expect(first.code, first.stderr + first.stdout).toBe(0);

      // More writes, a status change, a retention deletion, a deleted run.
      await writeStage(manager, "run-1", STAGES, 2);
      const raw = await openStore(from);
      try {
        await raw.updateCheckpoint(r1[1] as string, {
          status: "failed",
          error_message: "boom",
          resume_count: 1,
        });
        await raw.deleteCheckpoints("run-2", [r2[0] as string], { retention: true });
        await raw.deleteRun("run-3");
      } finally {
        await raw.close();
      }
      const second = await cairn("replicate", "--from", from, "--to", to, "--json");
      expect(second.code, second.stderr + second.stdout).toBe(0);

      const compared = await cairn("compare", "--store", from, "--store", to);
      expect(compared.code, compared.stdout).toBe(0);
      expect(compared.stdout).toContain("Compared 2 runs");
      const valid = await cairn("validate", "--all", "--store", to);
      expect(valid.code, valid.stdout).toBe(0);
    } finally {
      await manager.close();
    }
  });
});
