/**
 * `cairn ui`: the web console over the store the flags name. It runs until SIGINT/SIGTERM
 * (exit 0). The server and its libraries load only here, so no other command pays for them.
 */
import type { Command } from "commander";
import { InvalidArgumentError as CommanderArgumentError } from "commander";
import type { CheckpointManager } from "../../index.js";
import { UsageError } from "../exit-codes.js";
import { printText } from "../output.js";
import { examples } from "../runs.js";
import { stopOnSignals } from "../stop-signals.js";
import { storeHint } from "../store-args.js";
import { addStoreOptions, type StoreFlags, withManager, withReader } from "../store-options.js";

interface UiFlags extends StoreFlags {
  port: number;
  host: string;
  allowActions?: boolean;
  token?: string;
  auditLog?: string;
  pollInterval?: number;
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65_535)
    throw new CommanderArgumentError("a port is 0 to 65535 (0: any free port)");
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.5 || n > 3600)
    throw new CommanderArgumentError("seconds from 0.5 to 3600");
  return n;
}

async function serveUntilStopped(
  manager: CheckpointManager,
  flags: UiFlags,
  hint: string,
  version: string,
): Promise<void> {
  const { startConsole } = await import("../../ui/server.js");
  const server = await startConsole({
    manager,
    host: flags.host,
    port: flags.port,
    allowActions: flags.allowActions === true,
    storeHint: hint,
    version,
    ...(flags.token !== undefined ? { token: flags.token } : {}),
    ...(flags.auditLog !== undefined ? { auditLog: flags.auditLog } : {}),
    ...(flags.pollInterval !== undefined ? { pollIntervalMs: Math.round(flags.pollInterval * 1000) } : {}),
  });
  const store = await manager.getStore();
  const liveText =
    server.live.mode === "feed"
      ? "live: change feed"
      : `live: polling every ${server.live.intervalMs / 1000} s`;
  if (flags.json) {
    // One line, so a script reads the address with a single line read.
    printText(
      JSON.stringify({
        url: server.url,
        host: server.host,
        port: server.port,
        ...(server.token !== undefined ? { token: server.token } : {}),
        ...(server.loginUrl !== undefined ? { loginUrl: server.loginUrl } : {}),
        allowActions: flags.allowActions === true,
        live: server.live,
      }),
    );
  } else {
    printText(
      `cairn ui: ${server.url}  (store ${store.location}; actions ${flags.allowActions ? "on" : "off"}; ${liveText})`,
    );
    if (server.token !== undefined) {
      printText(`Token: ${server.token}  (send as "Authorization: Bearer <token>")`);
      printText(`One-time login link: ${server.loginUrl}`);
    }
    printText("Stop with Ctrl+C.");
  }
  const stop = new AbortController();
  const undo = stopOnSignals(stop);
  try {
    await new Promise<void>((resolve) =>
      stop.signal.addEventListener("abort", () => resolve(), { once: true }),
    );
  } finally {
    undo();
    await server.close();
  }
}

/** Registers `cairn ui`. */
export function registerUi(program: Command): void {
  const command = program
    .command("ui")
    .summary("Serve a web console of the store's runs and checkpoints")
    .description(
      "Starts a local web server with a console of the store: every run (filtered, sorted, paged, live), " +
        "a run's stage graph, timeline, checkpoint chain, recovery point and resume command, a checkpoint's " +
        "data, a comparison of two checkpoints, statistics, and the audit trail. Binds to 127.0.0.1; any other " +
        "--host requires a token (generated and printed when --token is left out). Actions (validate, " +
        "quarantine, cleanup, export) exist only with --allow-actions and are recorded in the audit trail. " +
        "GET /metrics serves Prometheus metrics. Runs until Ctrl+C (exit 0)",
    )
    .option("--port <port>", "port to listen on (0: any free port)", port, 4848)
    .option("--host <address>", "interface to bind; anything but loopback requires a token", "127.0.0.1")
    .option("--allow-actions", "enable validate, quarantine, cleanup and export from the console")
    .option("--token <token>", "require this token (bearer header, or the printed one-time login link)")
    .option("--audit-log <file>", "the audit trail's file (default .cairn/audit.jsonl)")
    .option(
      "--poll-interval <seconds>",
      "how often pages refresh on a store without a change feed (default 5)",
      seconds,
    )
    .addHelpText(
      "after",
      examples(
        "cairn ui --store sqlite:./cairn.db",
        "cairn ui --store postgres://localhost/etl --allow-actions",
        'cairn ui --host 0.0.0.0 --port 8080 --token "$(cat ~/.cairn-ui-token)"',
      ),
    );
  addStoreOptions(command);
  const json = command.options.find((option) => option.long === "--json");
  if (json) json.description = "print the address (and token) as one JSON line";
  command.action(async (flags: UiFlags) => {
    if (flags.token !== undefined && flags.token.trim() === "")
      throw new UsageError("--token takes a value: leave it out to have one generated");
    const hint = storeHint(command);
    const version = program.version() ?? "";
    // Actions change the store (quarantine, cleanup); without them the console only reads.
    const open = flags.allowActions ? withManager : withReader;
    await open(flags, (manager) => serveUntilStopped(manager, flags, hint, version));
  });
}
