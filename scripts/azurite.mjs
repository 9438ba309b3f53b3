#!/usr/bin/env node
/**
 * Runs azurite's blob service (npm `azurite`, a dev dependency) in memory on a loopback port for
 * the tests and CI, and stops it with its parent.
 *
 *   node scripts/azurite.mjs [--port N] [--watch-stdin]
 *
 * Prints one JSON line once the server answers: {"port", "url", "connectionString", "pid"}, then
 * keeps running until SIGTERM or SIGINT (or, with --watch-stdin, until its stdin closes: the
 * parent died or closed the pipe), and then stops azurite. Without `--port` a free port is used. Exits 1 when azurite does not come
 * up within 30 s, printing its output.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { createServer, Socket } from "node:net";
import { dirname, join } from "node:path";

/** The emulator's published development account (not a secret). */
const ACCOUNT = "devstoreaccount1";
const KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** True once the port answers an HTTP request with any status line. */
function answers(port) {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = "";
    const done = (ok) => {
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
      socket.write(`GET /${ACCOUNT}?comp=list HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`),
    );
  });
}

const args = process.argv.slice(2);
const portArg = args.indexOf("--port");
const port = portArg >= 0 ? Number(args[portArg + 1]) : await freePort();
const require = createRequire(import.meta.url);
const main = join(dirname(require.resolve("azurite/package.json")), "dist/src/blob/main.js");
const child = spawn(
  process.execPath,
  [
    main,
    "--blobHost",
    "127.0.0.1",
    "--blobPort",
    String(port),
    "--inMemoryPersistence",
    "--disableTelemetry",
  ],
  { stdio: ["ignore", "pipe", "pipe"] },
);
let output = "";
const keep = (chunk) => {
  output = (output + chunk.toString()).slice(-4000);
};
child.stdout.on("data", keep);
child.stderr.on("data", keep);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
if (args.includes("--watch-stdin")) {
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  process.stdin.resume();
}
child.once("exit", (code, signal) => {
  if (stopping) return;
  process.stderr.write(`azurite exited (${signal ?? code}):\n${output}\n`);
  process.exit(1);
});

const deadline = Date.now() + 30_000;
while (!(await answers(port))) {
  if (Date.now() > deadline) {
    process.stderr.write(`azurite did not answer on port ${port} within 30 s:\n${output}\n`);
    child.kill("SIGKILL");
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
}
const url = `http://127.0.0.1:${port}/${ACCOUNT}`;
const connectionString = `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};BlobEndpoint=${url};`;
process.stdout.write(`${JSON.stringify({ port, url, connectionString, pid: child.pid })}\n`);
