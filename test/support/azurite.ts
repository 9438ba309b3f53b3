/**
 * azurite (Microsoft's Azure Storage emulator, npm `azurite`) for the azure tests: one shared
 * in-memory blob server per test process, started on first use through scripts/azurite.mjs
 * (which stops it when this process's pipe closes, however the process ends), and private
 * servers a test may kill and restart. When azurite cannot start, `azuriteServer()` throws
 * under CI and otherwise warns loudly and resolves undefined, so the tests skip.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";

/** The emulator's published development account and key (documented by Microsoft, not a secret). */
export const AZURITE_ACCOUNT = "devstoreaccount1";
/** The key of {@link AZURITE_ACCOUNT}. */
export const AZURITE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** A running azurite blob service. */
export interface AzuriteServer {
  /** `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;...;BlobEndpoint=<url>;` */
  connectionString: string;
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  url: string;
  port: number;
}

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const SCRIPT = join(root, "scripts/azurite.mjs");

/** The connection string of the dev account at `url`. */
export function azuriteConnectionString(url: string): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${url};`;
}

function startShared(): Promise<AzuriteServer> {
  return new Promise((resolve, reject) => {
    // stdin stays a pipe: when this process ends, the pipe closes and the script stops azurite.
    const child = spawn(process.execPath, [SCRIPT, "--watch-stdin"], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => fail(new Error("azurite did not start within 40 s")), 40_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${error.message}\n${err}`));
    };
    child.once("error", fail);
    child.stderr?.on("data", (chunk) => {
      err = (err + chunk.toString()).slice(-4000);
    });
    child.once("exit", (code) => fail(new Error(`scripts/azurite.mjs exited with ${code}`)));
    child.stdout?.on("data", (chunk) => {
      out += chunk.toString();
      const line = out.split("\n")[0];
      if (!out.includes("\n") || line === undefined) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      // Neither the child nor its pipes keep this process alive; the exit handler kills it.
      child.unref();
      (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
      (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
      (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
      process.once("exit", () => child.kill("SIGTERM"));
      const info = JSON.parse(line) as AzuriteServer;
      resolve({ connectionString: info.connectionString, url: info.url, port: info.port });
    });
  });
}

let shared: Promise<AzuriteServer | undefined> | undefined;

/**
 * The shared azurite of this test process (started on first call). Undefined when it cannot
 * start outside CI (after a loud warning); under CI (`CI` set) a failure to start throws.
 */
export function azuriteServer(): Promise<AzuriteServer | undefined> {
  shared ??= startShared().catch((error: Error) => {
    if (process.env.CI) throw new Error(`azurite could not start and CI requires it: ${error.message}`);
    console.warn(
      `\n⚠⚠⚠ SKIPPING azure tests: azurite could not start (${error.message.split("\n")[0]}). ` +
        "Run `npm ci` to install it. ⚠⚠⚠\n",
    );
    return undefined;
  });
  return shared;
}

let counter = 0;
/** A container name unique to this process and call (Azure's rules: lowercase, digits, hyphens). */
export function uniqueContainerName(label = "t"): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${++counter}`.toLowerCase().slice(0, 63);
}

/** A unique container on `server`, and its removal (with every blob in it). */
export interface TestContainer {
  name: string;
  connectionString: string;
  /** Deletes the container; a container already gone is fine. */
  remove(): Promise<void>;
}

/** Names a unique container on `server` (the store creates it) and removes it on `remove()`. */
export function testContainer(server: AzuriteServer, label?: string): TestContainer {
  const name = uniqueContainerName(label);
  return {
    name,
    connectionString: server.connectionString,
    async remove() {
      const { BlobServiceClient } = await import("@azure/storage-blob");
      const service = BlobServiceClient.fromConnectionString(server.connectionString, {
        retryOptions: { maxTries: 1 },
      });
      await service.getContainerClient(name).deleteIfExists();
    },
  };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("error", () => done(false));
    socket.on("data", (chunk) => {
      reply += chunk.toString();
      if (reply.includes("\r\n")) done(reply.startsWith("HTTP/"));
    });
    socket.connect(port, "127.0.0.1", () =>
      socket.write(
        `GET /${AZURITE_ACCOUNT}?comp=list HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      ),
    );
  });
}

/**
 * A private azurite a test may kill and restart on the same port. In memory, a restart comes
 * back empty; `persistent`, it keeps its data in a temporary folder, but azurite saves its
 * metadata only every 5 s and on SIGTERM/SIGINT: after `kill()` (SIGKILL) the last seconds of
 * writes may be gone, after `kill("SIGTERM")` nothing is.
 */
export interface PrivateAzurite extends AzuriteServer {
  /** SIGKILL (or `signal`); resolves once the process is gone. Clients then get connection refused. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port; resolves once it answers. */
  start(): Promise<void>;
  /** kill() then start(). */
  restart(): Promise<void>;
  /** Kills it for good and removes its data folder. */
  stop(): Promise<void>;
}

/** Starts a private azurite on a free loopback port: in memory, or `persistent` in a temp folder. */
export async function startPrivateAzurite(options: { persistent?: boolean } = {}): Promise<PrivateAzurite> {
  const port = await freePort();
  const main = join(
    dirname(createRequire(import.meta.url).resolve("azurite/package.json")),
    "dist/src/blob/main.js",
  );
  const dir = options.persistent ? mkdtempSync(join(tmpdir(), "cairn-azurite-")) : undefined;
  const args = [main, "--blobHost", "127.0.0.1", "--blobPort", String(port), "--disableTelemetry"];
  args.push(...(dir === undefined ? ["--inMemoryPersistence"] : ["--location", dir]));
  let child: ChildProcess | undefined;
  let output = "";
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill(signal);
    await exited;
  };
  const onExit = () => child?.kill("SIGKILL");
  const start = async () => {
    if (child) throw new Error("the private azurite is already running");
    const spawned = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = spawned;
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    };
    spawned.stdout?.on("data", keep);
    spawned.stderr?.on("data", keep);
    const deadline = Date.now() + 60_000;
    while (!(await answers(port))) {
      if (spawned.exitCode !== null || Date.now() > deadline) {
        await kill();
        throw new Error(`azurite on port ${port} did not come up:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  process.once("exit", onExit);
  await start();
  const url = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  return {
    port,
    url,
    connectionString: azuriteConnectionString(url),
    kill,
    start,
    async restart() {
      await kill();
      await start();
    },
    async stop() {
      await kill();
      process.removeListener("exit", onExit);
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What the fault proxy does to the next matching request. */
export type Fault =
  /** Forwards the request (the server applies it), then answers 500 instead of the server's reply. */
  | "500-after"
  /** Answers 500 without forwarding: nothing is applied. */
  | "500-before"
  /** Answers 501 Not Implemented without forwarding. */
  | "501"
  /** Answers 201 with a fresh ETag without forwarding: a server that ignores conditions. */
  | "accept";

/** An HTTP proxy in front of azurite that injects faults into chosen requests. */
export interface FaultProxy extends AzuriteServer {
  /** Applies `fault` to the next `count` requests for which `match` holds. */
  inject(fault: Fault, count: number, match: (method: string, path: string) => boolean): void;
  /** Requests forwarded so far (method and path). */
  readonly forwarded: string[];
  close(): Promise<void>;
}

const errorBody = (code: string) =>
  `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>injected by the test</Message></Error>`;

/** Starts a fault proxy to the server at `target` (its `url`). */
export async function startFaultProxy(target: AzuriteServer): Promise<FaultProxy> {
  const http = await import("node:http");
  const rules: { fault: Fault; left: number; match: (method: string, path: string) => boolean }[] = [];
  const forwarded: string[] = [];
  let etags = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const method = req.method ?? "GET";
      const path = req.url ?? "/";
      const rule = rules.find((r) => r.left > 0 && r.match(method, path));
      if (rule) rule.left--;
      const answer = (status: number, code?: string) => {
        const headers: Record<string, string> = { date: new Date().toUTCString() };
        if (code) Object.assign(headers, { "x-ms-error-code": code, "content-type": "application/xml" });
        if (status === 201) headers.etag = `"0x${(++etags).toString(16).padStart(15, "0")}"`;
        res.writeHead(status, headers);
        res.end(code ? errorBody(code) : "");
      };
      if (rule?.fault === "500-before") return answer(500, "InternalError");
      if (rule?.fault === "501") return answer(501, "NotImplemented");
      if (rule?.fault === "accept") return answer(201);
      forwarded.push(`${method} ${path}`);
      const upstream = http.request(
        { host: "127.0.0.1", port: target.port, method, path, headers: req.headers },
        (reply) => {
          const body: Buffer[] = [];
          reply.on("data", (c: Buffer) => body.push(c));
          reply.on("end", () => {
            if (rule?.fault === "500-after") return answer(500, "InternalError");
            res.writeHead(reply.statusCode ?? 502, reply.headers);
            res.end(Buffer.concat(body));
          });
        },
      );
      upstream.on("error", () => res.destroy());
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const url = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  return {
    port,
    url,
    connectionString: azuriteConnectionString(url),
    forwarded,
    inject(fault, count, match) {
      rules.push({ fault, left: count, match });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
