/**
 * `startConsole`: the web console over one manager's store, in this process. It binds to
 * loopback unless told otherwise, and then demands a token (generated when none is given);
 * actions exist only with `allowActions`, each recorded in the audit trail first.
 */

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { getRequestListener } from "@hono/node-server";
import { InvalidArgumentError } from "../core/errors.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { registerMetricsSink } from "../telemetry/index.js";
import { createActions, withAudit } from "./actions.js";
import {
  type ApiContext,
  checkpointDetail,
  checkpointExport,
  checkpointOutput,
  checkpointState,
  compareCheckpoints,
  listRunsPage,
  runDetail,
  runGraphSvg,
  statistics,
} from "./api/index.js";
import { createApp, type ReadApi } from "./app.js";
import { loadAssets } from "./assets.js";
import { AuditLog, auditUser, DEFAULT_AUDIT_LOG } from "./audit.js";
import { FeedHub, type LiveMode } from "./events.js";
import { createPrometheus } from "./metrics.js";
import { Guard, isLoopback, malformedRequest, secret } from "./security.js";
import { SharedComputation } from "./stats-cache.js";

/** Options of {@link startConsole}. */
export interface ConsoleOptions {
  /** The store to show; the console never closes it. */
  manager: CheckpointManager;
  /** Interface to bind (default 127.0.0.1); any non-loopback one requires a token. */
  host?: string;
  /** Port (default 4848; 0 picks a free one). */
  port?: number;
  /** Mount the action endpoints (validate, quarantine, cleanup, export). */
  allowActions?: boolean;
  /** Required on every request; generated for a non-loopback bind when absent. */
  token?: string;
  /** The audit trail's file (default `.cairn/audit.jsonl` under the working directory). */
  auditLog?: string;
  /** How often pages refetch on a store without a change feed (default 5,000 ms). */
  pollIntervalMs?: number;
  /** The store flags, for the commands the console shows (` --store sqlite:./x.db`). */
  storeHint?: string;
  /** The package version shown by the page. */
  version?: string;
  /** Where the server logs what a client must not see (default stderr). */
  log?: (text: string) => void;
  /** Folder of the built page (tests). */
  assetsDir?: string;
}

/** A running console. */
export interface ConsoleServer {
  /** The address to open. */
  url: string;
  host: string;
  port: number;
  /** The token in force, if any. */
  token?: string;
  /** A one-time link that sets a session cookie, when a token is in force. */
  loginUrl?: string;
  live: LiveMode;
  /** Issues another one-time login link. */
  newLoginUrl(): string | undefined;
  /** Stops serving (open event streams are cut) and stops watching the store. */
  close(): Promise<void>;
}

const DEFAULT_PORT = 4848;
const DEFAULT_POLL_MS = 5_000;

function urlHost(host: string): string {
  const shown = host === "0.0.0.0" || host === "::" ? hostname() : host;
  return shown.includes(":") ? `[${shown}]` : shown;
}

function checkOptions(options: ConsoleOptions): void {
  const { port, pollIntervalMs, token } = options;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65_535))
    throw new InvalidArgumentError(`port must be a whole number from 0 to 65535, not ${port}`);
  if (pollIntervalMs !== undefined && (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 500))
    throw new InvalidArgumentError(`the poll interval must be at least 500 ms, not ${pollIntervalMs}`);
  if (token !== undefined && !/^[\x21-\x7e]{16,512}$/.test(token))
    throw new InvalidArgumentError(
      "the token must be 16 to 512 printable ASCII characters without spaces (a generated one is printed when --token is left out)",
    );
}

/** How long a statistics answer is served without a refresh. */
const STATISTICS_TTL_MS = 60_000;

/** The read side of `api/`, bound to one store. */
function readApi(ctx: ApiContext, log: (text: string) => void): ReadApi {
  const stats = new SharedComputation(() => statistics(ctx), STATISTICS_TTL_MS, Date.now, log);
  return {
    runs: (query) => listRunsPage(ctx, query),
    run: (pipelineId) => runDetail(ctx, pipelineId),
    graph: (pipelineId, kind) => runGraphSvg(ctx, pipelineId, kind),
    checkpoint: (checkpointId) => checkpointDetail(ctx, checkpointId),
    state: (checkpointId) => checkpointState(ctx, checkpointId),
    output: (checkpointId, name) => checkpointOutput(ctx, checkpointId, name),
    exportFile: (checkpointId) => checkpointExport(ctx, checkpointId),
    compare: (a, b) => compareCheckpoints(ctx, a, b),
    statistics: () => stats.get(),
  };
}

/** Starts the console and resolves once it listens. */
export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  checkOptions(options);
  const { manager } = options;
  const host = options.host ?? "127.0.0.1";
  const loopback = isLoopback(host);
  const token = options.token ?? (loopback ? undefined : secret());
  const log = options.log ?? ((text: string) => process.stderr.write(`${text}\n`));
  const store = await manager.getStore();
  const guard = new Guard(token, loopback);
  const audit = new AuditLog(options.auditLog ?? DEFAULT_AUDIT_LOG);
  const user = auditUser();
  const prometheus = createPrometheus();
  const unregister = registerMetricsSink(prometheus.sink);
  const feed = new FeedHub(manager, (change) => prometheus.feedChange(change.type), log);
  let live: LiveMode;
  try {
    live = await feed.start(options.pollIntervalMs ?? DEFAULT_POLL_MS);
  } catch (error) {
    unregister();
    throw error;
  }
  const ctx: ApiContext = { manager, storeHint: options.storeHint ?? "" };
  const app = createApp({
    guard,
    assets: await loadAssets(options.assetsDir),
    session: {
      version: options.version ?? "",
      store: { strategy: store.strategy, location: store.location },
      allowActions: options.allowActions === true,
      live,
      user,
    },
    read: readApi(ctx, log),
    actions: options.allowActions ? createActions({ ...ctx, audit }) : undefined,
    audit: {
      read: (query) => audit.read(query),
      access: (action, target, who, work) => withAudit(audit, who, action, target, work),
    },
    metrics: prometheus,
    feed,
    live,
    user,
    log,
  });
  // The adapter refuses a malformed request before the application sees it: the error handler
  // gives that refusal the console's JSON error and security headers.
  const listener = getRequestListener(app.fetch, { errorHandler: malformedRequest });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer(listener);
    s.listen(options.port ?? DEFAULT_PORT, host, () => resolve(s));
    s.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE" || error.code === "EACCES" || error.code === "EADDRNOTAVAIL"
          ? new InvalidArgumentError(
              `cannot listen on ${host}:${options.port ?? DEFAULT_PORT} (${error.code}): choose another --port or --host`,
            )
          : new InvalidArgumentError(`the console cannot listen on ${host}: ${error.message}`),
      ),
    );
  }).catch(async (error) => {
    unregister();
    await feed.close();
    throw error;
  });
  const port = (server.address() as AddressInfo).port;
  const base = `http://${urlHost(host)}:${port}`;
  const newLoginUrl = () => (token === undefined ? undefined : `${base}/login?code=${guard.loginCode()}`);
  const loginUrl = newLoginUrl();
  return {
    url: `${base}/`,
    host,
    port,
    ...(token !== undefined ? { token } : {}),
    ...(loginUrl !== undefined ? { loginUrl } : {}),
    live,
    newLoginUrl,
    close: async () => {
      unregister();
      await feed.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Event streams stay open until cut: close() would otherwise wait for every page.
        server.closeAllConnections();
      });
    },
  };
}
