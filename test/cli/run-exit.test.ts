/**
 * How `cairn run` ends when it is cut short, as a real subprocess: a reader that goes away
 * (`| head -2`) never ends the run; a second Ctrl+C releases the run's lease on its way out; and
 * a run whose holder was SIGKILLed is refused with a message saying that process is gone and
 * when its lease expires. Before, each of these left the next `cairn run` refused (exit 6).
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CLI_PATH, type CliResult, runCairn } from "../support/cli.js";

let dir: string;

function cairn(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCairn(args, { cwd: dir, env });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-run-exit-"));
  // A lease far longer than any test: a run refused because of it is refused for the whole test.
  await writeFile(
    join(dir, "p.yaml"),
    `name: demo
checkpoint: { enabled: true, strategy: file, config: { base_path: ./store }, lease_ttl_ms: 600000 }
steps:
  - { name: a, agent: ./agents.mjs:a }
  - { name: b, agent: ./agents.mjs:b }
  - { name: c, agent: ./agents.mjs:c }
`,
  );
  // HANG=b makes stage b wait (almost) forever, ignoring its abort signal, as real agents do.
  await writeFile(
    join(dir, "agents.mjs"),
    `import { appendFileSync } from "node:fs";
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const stage = (name) => async () => {
  appendFileSync("journal.txt", name + "\\n");
  await wait(process.env.HANG === name ? 3_600_000 : Number(process.env.SLOW ?? 0));
  return { stage: name };
};
export const a = stage("a");
export const b = stage("b");
export const c = stage("c");
`,
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const journal = async () => (await readFile(join(dir, "journal.txt"), "utf8")).trim().split("\n");

/** The runs in the test's store, with their status. */
async function runs(): Promise<{ pipelineId: string; status: string }[]> {
  const listed = await cairn(["list", "--store", "file:./store", "--json"]);
  expect(listed.code).toBe(0);
  return JSON.parse(listed.stdout);
}

/** Runs `script` with `sh -c` in the test folder; resolves once the whole shell pipeline ended. */
function sh(script: string, env: Record<string, string> = {}): Promise<number | null> {
  const child = spawn("sh", ["-c", script], {
    cwd: dir,
    stdio: "ignore",
    env: { ...process.env, CAIRN_STORE: undefined, CAIRN_DEBUG: undefined, ...env },
  });
  return new Promise((resolve) => child.on("close", resolve));
}

/** Starts `cairn run p.yaml` with `HANG=b`; resolves with the child once stage b has started. */
async function startHanging() {
  const child = spawn(process.execPath, [CLI_PATH, "run", "p.yaml"], {
    cwd: dir,
    env: { ...process.env, CAIRN_STORE: undefined, HANG: "b" },
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const closed = new Promise<number | null>((resolve) => child.on("close", resolve));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", () => {
      if (out.includes("▶ b started")) resolve();
    });
    child.on("close", () => reject(new Error(`cairn run ended before stage b started:\n${out}`)));
  });
  return { child, closed, output: () => out };
}

it("finishes the run when its reader goes away (| head -2), and says how it went", async () => {
  // The exit code of cairn itself, not of head, is written to a file.
  await sh(`{ "${process.execPath}" "${CLI_PATH}" run p.yaml; echo $? > code.txt; } | head -2`, {
    SLOW: "200",
  });
  expect((await readFile(join(dir, "code.txt"), "utf8")).trim()).toBe("0");
  expect(await journal()).toEqual(["a", "b", "c"]);
  expect((await runs()).map((r) => r.status)).toEqual(["completed"]);
  // The lease was released with the run: the next run is not refused.
  const next = await cairn(["run", "p.yaml"]);
  expect(next.code).toBe(0);

  // Stderr into the same closed pipe: the same.
  await sh(`{ "${process.execPath}" "${CLI_PATH}" run p.yaml 2>&1; echo $? > code.txt; } | head -1`, {
    SLOW: "200",
  });
  expect((await readFile(join(dir, "code.txt"), "utf8")).trim()).toBe("0");
  expect((await runs()).map((r) => r.status)).toEqual(["completed", "completed", "completed"]);
});

it("does not report success for a run that failed after its reader went away", async () => {
  // Stage b fails once head has long gone: the failure is still the exit code.
  await writeFile(
    join(dir, "agents.mjs"),
    `export const a = () => new Promise((r) => setTimeout(() => r(1), 300));
export const b = () => { throw new Error("b broke"); };
export const c = () => 3;
`,
  );
  await sh(`{ "${process.execPath}" "${CLI_PATH}" run p.yaml; echo $? > code.txt; } | head -1`);
  expect((await readFile(join(dir, "code.txt"), "utf8")).trim()).toBe("1");
  expect((await runs()).map((r) => r.status)).toEqual(["failed"]);
});

it("releases the lease on a second Ctrl+C, so the next run resumes at once", async () => {
  const { child, closed, output } = await startHanging();
  child.kill("SIGINT");
  await new Promise((r) => setTimeout(r, 200)); // two separate signals, as from a person
  child.kill("SIGINT");
  expect(await closed).toBe(130);
  expect(output()).toContain("SIGINT again: exiting now");
  // Stopped, lease released: nobody is executing it.
  expect((await runs()).map((r) => r.status)).toEqual(["paused"]);
  // Without HANG the run resumes (the lease would otherwise hold it for 10 minutes).
  const resumed = await cairn(["run", "p.yaml"]);
  expect(resumed.stderr).toBe("");
  expect(resumed.code).toBe(0);
  expect(resumed.stdout).toContain("↷ a skipped");
  expect(await journal()).toEqual(["a", "b", "b", "c"]);
});

it("says the holder of a lease is a dead process of this host, and how long until its lease expires", async () => {
  const { child, closed } = await startHanging();
  child.kill("SIGKILL");
  await closed;
  const refused = await cairn(["run", "p.yaml"]);
  expect(refused.code).toBe(6);
  expect(refused.stderr).toMatch(
    new RegExp(`is locked by \\S+:${child.pid}:\\w+, a process of this host that is no longer running`),
  );
  expect(refused.stderr).toMatch(/its lease expires in \d+ s \(at \d{4}-\d\d-\d\dT[\d:.]+Z\)/);
  expect(refused.stderr).toContain("(CAIRN_RUN_LOCKED)");
});

it("ends cairn monitor when its reader goes away, rather than watching for nobody", async () => {
  // An empty store: a reading command refuses a location with none (exit 3).
  await mkdir(join(dir, "store"));
  const code = await sh(
    `{ "${process.execPath}" "${CLI_PATH}" monitor --store file:./store --refresh 0.2; echo $? > code.txt; } | head -1`,
  );
  expect(code).toBe(0);
  expect((await readFile(join(dir, "code.txt"), "utf8")).trim()).toBe("0");
});
