/** The audit trail: append and read back newest first with paging; the hash chain finds tampering. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditLog, auditUser, GENESIS, verifyAuditLog } from "../../src/ui/audit.js";

let dir: string;
let path: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-audit-"));
  path = join(dir, "nested", "audit.jsonl");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const who = { user: "alice", client: "127.0.0.1" };
const entry = (n: number) => ({
  ...who,
  action: "validate",
  target: { pipelineId: `run_${n}` },
  outcome: "done" as const,
  detail: { n },
});

describe("AuditLog", () => {
  it("appends chained entries (creating the folder) and reads them back newest first, paged", async () => {
    const log = new AuditLog(path);
    const written = [];
    for (let i = 0; i < 5; i++) written.push(await log.append(entry(i)));
    expect(written[0]?.prev).toBe(GENESIS);
    for (let i = 1; i < 5; i++) expect(written[i]?.prev).toBe(written[i - 1]?.hash);
    const lines = (await readFile(path, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(5);
    expect(JSON.parse(lines[0] as string)).toEqual(written[0]);

    const first = await log.read({ limit: 2 });
    expect(first.entries.map((e) => e.detail?.n)).toEqual([4, 3]);
    expect(first.nextBefore).toBe(written[3]?.hash);
    const second = await log.read({ limit: 2, before: first.nextBefore as string });
    expect(second.entries.map((e) => e.detail?.n)).toEqual([2, 1]);
    const third = await log.read({ limit: 2, before: second.nextBefore as string });
    expect(third.entries.map((e) => e.detail?.n)).toEqual([0]);
    expect(third.nextBefore).toBeUndefined();
    expect(await log.verify()).toEqual({ ok: true, entries: 5 });
  });

  it("reads an absent file as empty, and refuses bad paging arguments", async () => {
    const log = new AuditLog(path);
    expect(await log.read()).toEqual({ entries: [] });
    expect(await log.verify()).toEqual({ ok: true, entries: 0 });
    await expect(log.read({ limit: 0 })).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
    await expect(log.read({ before: "../x" })).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
  });

  it("keeps the chain whole under concurrent appends from one process", async () => {
    const log = new AuditLog(path);
    const written = await Promise.all(Array.from({ length: 40 }, (_, i) => log.append(entry(i))));
    expect(new Set(written.map((e) => e.hash)).size).toBe(40);
    expect(await verifyAuditLog(path)).toEqual({ ok: true, entries: 40 });
    // A second writer on the same file (a restarted console) continues the chain.
    await new AuditLog(path).append(entry(99));
    expect(await verifyAuditLog(path)).toEqual({ ok: true, entries: 41 });
  });

  it("verify names the first edited, removed or malformed line", async () => {
    const log = new AuditLog(path);
    for (let i = 0; i < 4; i++) await log.append(entry(i));
    const original = await readFile(path, "utf8");
    const lines = original.trim().split("\n");

    await writeFile(path, original.replace('"user":"alice"', '"user":"mallory"'));
    expect(await log.verify()).toMatchObject({ ok: false, entries: 0, brokenAt: { line: 1 } });
    expect((await log.verify()).brokenAt?.reason).toContain("edited");

    await writeFile(path, `${[lines[0], lines[2], lines[3]].join("\n")}\n`);
    expect(await log.verify()).toMatchObject({ ok: false, entries: 1, brokenAt: { line: 2 } });

    await writeFile(path, `${[lines[0], lines[1], "{not json", lines[3]].join("\n")}\n`);
    expect(await log.verify()).toMatchObject({ ok: false, entries: 2, brokenAt: { line: 3 } });
    await expect(log.read()).rejects.toMatchObject({
      code: "CAIRN_CORRUPT",
      message: expect.stringContaining("line 3"),
    });
  });

  it("names the OS user", () => {
    expect(auditUser()).toMatch(/\S/);
  });
});
