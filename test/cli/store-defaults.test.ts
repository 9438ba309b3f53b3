/** Store flags that say how to use a store, not where it is (`--schema` alone), and a PostgreSQL store without a user. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { runCairn } from "../support/cli.js";
import { dropSchemas, POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

let dir: string;
const schema = uniqueName("cairn_store_defaults");
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-store-defaults-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  if (postgresUp) await dropSchemas(schema);
});

/** No user for pg to fall back on: neither PGUSER nor USER (nor USERNAME) is set. */
const NO_USER = { PGUSER: undefined, USER: undefined, USERNAME: undefined };

describe.runIf(postgresUp)("--schema alone", () => {
  it("applies to the CAIRN_STORE server instead of connecting nowhere", async () => {
    const manager = new CheckpointManager({ store: `${POSTGRES_URL}?schema=${schema}` });
    await manager.createCheckpoint({ pipelineId: "in_schema", stageName: "a", stageIndex: 0, stateData: {} });
    await manager.close();

    const listed = await runCairn(["list", "--schema", schema, "--json"], {
      cwd: dir,
      env: { ...NO_USER, CAIRN_STORE: POSTGRES_URL },
    });
    expect(listed.stderr).not.toMatch(/startup packet/);
    expect(listed.code).toBe(0);
    expect(JSON.stringify(JSON.parse(listed.stdout))).toContain("in_schema");
  });

  it("without CAIRN_STORE or any user, says which user is missing and how to give one", async () => {
    const result = await runCairn(["list", "--schema", schema], { cwd: dir, env: NO_USER });
    expect(result.stderr).not.toMatch(/startup packet/);
    expect(result.stderr).toMatch(
      /--schema names no PostgreSQL server and user: give --connection-string .*CAIRN_STORE.*PGUSER/,
    );
    expect(result.code).toBe(2);
  });
});
