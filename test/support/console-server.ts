/**
 * `cairn ui` as users start it: the BUILT CLI (`node dist/cli/main.js ui --json --port 0 …`) in a
 * child process, serving the built console from dist/ui/web. Resolves once it printed its JSON
 * line; `stop()` sends SIGTERM (SIGKILL after 5 s) and waits for the exit. Only the processes
 * started here are ever signalled.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CLI_PATH } from "./cli.js";

/** The built console's page: the browser tests need `npm run build` (tsc + vite) first. */
export const CONSOLE_INDEX = join(dirname(fileURLToPath(import.meta.url)), "../../dist/ui/web/index.html");

/** True when the console was built (dist/ui/web/index.html exists). */
export function consoleBuilt(): boolean {
  return existsSync(CONSOLE_INDEX) && existsSync(CLI_PATH);
}

/** What `cairn ui --json` printed, and the handle of its process. */
export interface ConsoleServer {
  url: string;
  host: string;
  port: number;
  token: string | undefined;
  loginUrl: string | undefined;
  allowActions: boolean;
  live: unknown;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far (for failure messages). */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit code (null when killed). */
  stop(): Promise<number | null>;
}

/** Options of {@link startConsoleServer}. */
export interface ConsoleServerOptions {
  /** Store URL (`--store`). */
  store: string;
  /** Extra arguments (`--allow-actions`, `--host 0.0.0.0`, `--token T`, `--audit-log F`, …). */
  args?: readonly string[];
  /** Working directory (the default audit log `.cairn/audit.jsonl` lands there). */
  cwd: string;
  env?: Record<string, string | undefined>;
  /** How long to wait for the JSON line (default 20 s). */
  timeoutMs?: number;
}

/** Starts `cairn ui --json --port 0 --store <url> …args` and resolves with its JSON line. */
export function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const args = [CLI_PATH, "ui", "--json", "--port", "0", "--store", options.store, ...(options.args ?? [])];
  const child = spawn(process.execPath, args, {
    cwd: options.cwd,
    env: { ...process.env, CAIRN_STORE: undefined, CAIRN_DEBUG: undefined, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      void stop();
      reject(new Error(`cairn ${args.slice(1).join(" ")}: ${why}\nstdout: ${stdout}\nstderr: ${stderr}`));
    };
    const timer = setTimeout(() => fail("no JSON line in time"), options.timeoutMs ?? 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(`exited with ${code} before it listened`);
    });
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (settled) return;
      // The design says one JSON line; a value spread over lines is read once it is whole.
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(stdout) as Record<string, unknown>;
      } catch {
        if (stdout.length > 100_000) fail("stdout does not start with a JSON value");
        return;
      }
      clearTimeout(timer);
      settled = true;
      resolve({
        url: String(line.url),
        host: String(line.host),
        port: Number(line.port),
        token: typeof line.token === "string" ? line.token : undefined,
        loginUrl: typeof line.loginUrl === "string" ? line.loginUrl : undefined,
        allowActions: line.allowActions === true,
        live: line.live,
        child,
        stderr: () => stderr,
        stop,
      });
    });
  });
}
