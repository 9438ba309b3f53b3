/** Runs the built `cairn` CLI as a subprocess, the way users run it (the global setup built it). */
import { execFile } from "node:child_process";
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
