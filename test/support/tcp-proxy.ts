/**
 * A TCP proxy on loopback in front of a real server, so a test can make the server "go away"
 * (every connection dropped, new ones refused) and "come back", without stopping the shared
 * server other tests use.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

/** A running proxy. */
export interface TcpProxy {
  /** The port clients connect to. */
  port: number;
  /** Drops every open connection and refuses new ones. */
  down(): Promise<void>;
  /** Accepts connections again, on the same port. */
  up(): Promise<void>;
  /** Stops the proxy for good. */
  close(): Promise<void>;
  /** Drops every open connection but keeps accepting new ones. */
  cut(): void;
  /** While true, what the server sends is dropped: a request is served, its reply never arrives. */
  holdReplies(hold: boolean): void;
  /** While true, what clients send is dropped: the client has sent a request the server never gets. */
  dropRequests(drop: boolean): void;
  /** Bytes received from clients so far, forwarded or dropped. */
  readonly clientBytes: number;
}

/** Starts a proxy to `targetHost:targetPort` on a free loopback port. */
export async function startProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  let holding = false;
  let dropping = false;
  let clientBytes = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = createConnection({ host: targetHost, port: targetPort });
        sockets.add(client);
        sockets.add(upstream);
        // Forwarded by hand rather than piped, so a direction can be held without closing it.
        client.on("data", (chunk: Buffer) => {
          clientBytes += chunk.length;
          if (!dropping) upstream.write(chunk);
        });
        upstream.on("data", (chunk: Buffer) => {
          if (!holding) client.write(chunk);
        });
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on("error", drop).on("close", drop);
        upstream.on("error", drop).on("close", drop);
      });
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        port = (s.address() as { port: number }).port;
        server = s;
        resolve();
      });
    });
  const cut = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      cut();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });
  await listen();
  return {
    port,
    down: stop,
    up: listen,
    close: stop,
    cut,
    holdReplies: (hold) => {
      holding = hold;
    },
    dropRequests: (drop) => {
      dropping = drop;
    },
    get clientBytes() {
      return clientBytes;
    },
  };
}
