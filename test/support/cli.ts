/** Runs the built `cairn` CLI as a subprocess, the way users run it (the global setup built it). */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Path of the built CLI entry point. */
export const CLI_PATH = join(dirname(fileURLToPath(import.meta.url)), "../../dist/cli/main.js");

/** Exit code and output of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cairn ...args` in `cwd`; resolves with its exit code and output whatever the code.
 * `CAIRN_STORE` and `CAIRN_DEBUG` from the test's own environment are cleared first.
 */
export function runCairn(
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string | undefined> },
): Promise<CliResult> {
  const env = { ...process.env, CAIRN_STORE: undefined, CAIRN_DEBUG: undefined, ...options.env };
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_PATH, ...args], { cwd: options.cwd, env }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** A long-running `cairn` process (`watch`, `monitor`, `worker`): its output so far, and waits on it. */
export function startCairn(
  args: readonly string[],
  options: { cwd: string; children?: Set<ChildProcess>; timeoutMs?: number },
) {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: options.cwd,
    env: { ...process.env, CAIRN_STORE: undefined, CAIRN_DEBUG: undefined },
  });
  options.children?.add(child);
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (chunk: Buffer) => {
    out.stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    out.stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const timeoutMs = options.timeoutMs ?? 20_000;
  /** Resolves once `test` holds (checked every 25 ms); fails after the timeout or if the process exits. */
  const until = async (what: string, test: () => boolean | Promise<boolean>) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await test())) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`cairn ${args.join(" ")}: no ${what}\nstdout: ${out.stdout}\nstderr: ${out.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  const lines = () => out.stdout.split("\n").filter((l) => l !== "");
  return { child, out, exited, until, lines };
}
