/**
 * A Pipeline that opened its own store does not keep the process alive once `execute()` has
 * settled, on every store, without `close()`: the README's first example ends by itself. Before,
 * an idle Redis connection kept it alive for good and an idle PostgreSQL pool for its 10 s idle
 * timeout. A real child process, since only a process's own exit shows what holds it open. The
 * child also runs again after a pause: an idle connection must not let the process end while a
 * store call awaits its reply.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { expect, it } from "vitest";
import { storeUrls } from "../support/store-urls.js";

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const CHILD = fileURLToPath(new URL("./fixtures/lifetime-child.ts", import.meta.url));
/** Not a timing assertion: only a child that would never end by itself is stopped here. */
const GIVE_UP_MS = 60_000;

const { urls } = storeUrls("lifetime");

/** Runs the child on `store`; resolves with its exit code (null when it had to be killed) and report. */
function runChild(store: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", TSX, CHILD, store], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), GIVE_UP_MS);
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// What a store could hold the process with: sockets, and timers such as a pool's idle timeout
// (the child's own stdio pipes are not the store's).
const HOLDING = ["TCPSocketWrap", "TLSWrap", "Timeout"];

for (const [name, url] of Object.entries(urls)) {
  it(`${name}: the process ends by itself after execute(), without close()`, {
    timeout: GIVE_UP_MS + 30_000,
  }, async () => {
    const { code, stdout, stderr } = await runChild(url());
    // A process that ended while a store call was still awaited has no report (exit code 13).
    expect(stdout, `no report (exit code ${code}): ${stderr}`).not.toBe("");
    expect(stderr).toBe("");
    const report = JSON.parse(stdout.trim()) as { status: string; active: string[] };
    expect(report.status).toBe("completed");
    // Right after execute() settled, nothing of the store's keeps the event loop alive...
    expect(report.active.filter((r) => HOLDING.includes(r))).toEqual([]);
    // ...so the process ended by itself, with success.
    expect(code).toBe(0);
  });
}
