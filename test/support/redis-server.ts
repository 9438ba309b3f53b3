/**
 * A private `redis-server` for fault injection: started by the test on a free loopback port,
 * killed with SIGKILL and restarted on the same port (and data folder), and stopped for good in
 * `afterAll`, without touching the shared server other tests use.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";

/** Where the binary is expected; override with `CAIRN_TEST_REDIS_SERVER`. */
export const REDIS_SERVER = process.env.CAIRN_TEST_REDIS_SERVER ?? "/usr/bin/redis-server";

/** Why a private server cannot be started here, or undefined when it can. */
export function redisServerMissing(): string | undefined {
  return existsSync(REDIS_SERVER) ? undefined : `no redis-server binary at ${REDIS_SERVER}`;
}

/** A running private server. */
export interface PrivateRedis {
  port: number;
  url: string;
  /** SIGKILL: no shutdown save, no goodbye to clients. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and data folder; resolves once it answers. */
  start(): Promise<void>;
  /** Kills it and removes its data folder. */
  stop(): Promise<void>;
}

/** True once the server answers PING with PONG (and has finished loading its data). */
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
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"));
  });
}

/**
 * Starts a private server. `persistent`: an append-only file flushed on every write
 * (`appendfsync always`), so whatever it acknowledged survives SIGKILL; otherwise no
 * persistence at all, and a restart comes back empty.
 */
export async function startRedisServer(options: { persistent: boolean }): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "cairn-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", ""];
  args.push(
    ...(options.persistent ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"]),
  );
  let child: ChildProcess | undefined;
  let output = "";
  const kill = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGKILL");
    await exited;
  };
  const start = async () => {
    if (child) throw new Error("the private redis-server is already running");
    const spawned = spawn(REDIS_SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
    child = spawned;
    spawned.stdout?.on("data", (chunk) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    spawned.stderr?.on("data", (chunk) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    const deadline = Date.now() + 20_000;
    while (!(await answers(port))) {
      if (spawned.exitCode !== null || Date.now() > deadline) {
        await kill();
        throw new Error(`redis-server on port ${port} did not come up:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    kill,
    start,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
