/** `cairn audit` (the built CLI): lists the trail newest first, as a table or JSON; `--verify` finds tampering (exit 4). */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { AuditLog } from "../../src/ui/audit.js";
import { runCairn } from "../support/cli.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-audit-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cairn = (args: string[]) => runCairn(args, { cwd: dir });

/** A trail with a quarantine (requested, done) and a failed validate, in the default place. */
async function writeTrail(): Promise<string> {
  const log = new AuditLog(join(dir, ".cairn", "audit.jsonl"));
  const who = { user: "alice", client: "10.0.0.7" };
  await log.append({
    ...who,
    action: "quarantine",
    target: { checkpointId: "etl_c1" },
    outcome: "requested",
  });
  await log.append({ ...who, action: "quarantine", target: { checkpointId: "etl_c1" }, outcome: "done" });
  await log.append({
    ...who,
    action: "validate",
    target: { pipelineId: "etl_r9" },
    outcome: "failed",
    detail: { code: "CAIRN_NOT_FOUND", message: "no run" },
  });
  return log.path;
}

it("lists the trail newest first from .cairn/audit.jsonl, as a table and as JSON", async () => {
  await writeTrail();
  const table = await cairn(["audit"]);
  expect(table.code, table.stderr).toBe(0);
  const lines = table.stdout.trim().split("\n");
  expect(lines[0]).toMatch(/^TIME\s+USER\s+CLIENT\s+ACTION\s+TARGET\s+OUTCOME$/);
  expect(lines[1]).toMatch(/alice\s+10\.0\.0\.7\s+validate\s+etl_r9\s+failed \(CAIRN_NOT_FOUND\)/);
  expect(lines[2]).toMatch(/quarantine\s+etl_c1\s+done/);
  expect(lines[3]).toMatch(/quarantine\s+etl_c1\s+requested/);

  const json = await cairn(["audit", "--json", "--limit", "2"]);
  expect(json.code).toBe(0);
  const parsed = JSON.parse(json.stdout) as { entries: { action: string; outcome: string }[]; more: boolean };
  expect(parsed.entries.map((e) => [e.action, e.outcome])).toEqual([
    ["validate", "failed"],
    ["quarantine", "done"],
  ]);
  expect(parsed.more).toBe(true);

  expect((await cairn(["audit", "--limit", "0"])).code).toBe(2);
  const empty = await cairn(["audit", "--audit-log", join(dir, "none.jsonl")]);
  expect(empty.code).toBe(0);
  expect(empty.stdout).toContain("No entries");
});

it("--verify exits 0 on a whole chain and 4 naming the line of a tampered one", async () => {
  const path = await writeTrail();
  const whole = await cairn(["audit", "--verify"]);
  expect(whole.code, whole.stderr).toBe(0);
  expect(whole.stdout).toContain("3 entries, the hash chain is whole");

  const moved = join(dir, "moved.jsonl");
  const text = await readFile(path, "utf8");
  await writeFile(
    moved,
    text.replace(
      '"user":"alice","client":"10.0.0.7","action":"quarantine","target":{"checkpointId":"etl_c1"},"outcome":"done"',
      '"user":"alice","client":"10.0.0.7","action":"quarantine","target":{"checkpointId":"etl_c1"},"outcome":"failed"',
    ),
  );
  const broken = await cairn(["audit", "--verify", "--audit-log", moved]);
  expect(broken.code).toBe(4);
  expect(broken.stdout).toContain("breaks at line 2");
  const json = await cairn(["audit", "--verify", "--json", "--audit-log", moved]);
  expect(json.code).toBe(4);
  expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, entries: 1, brokenAt: { line: 2 } });

  // A line that is not JSON: listing fails with the corrupt-data exit code, naming the line.
  await writeFile(moved, `${text}{oops\n`);
  const listing = await cairn(["audit", "--audit-log", moved]);
  expect(listing.code).toBe(4);
  expect(listing.stderr).toContain("line 4");
});
