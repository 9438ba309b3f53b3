/**
 * The Azure Blob `ObjectClient` when things go wrong: an endpoint that refuses or never answers,
 * a server killed mid-test and restarted, a conditional put whose reply is a 500 (applied or
 * not) or is lost, and servers that ignore conditions (the probe refuses them). The faults are
 * real processes and sockets: a private azurite, a TCP proxy, an HTTP proxy that rewrites replies.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { StoreOperationError, StoreUnavailableError, StoreUnsupportedError } from "../../src/core/errors.js";
import { type AzureObjects, createAzureObjects } from "../../src/stores/azure/objects.js";
import {
  type AzuriteServer,
  azuriteConnectionString,
  azuriteServer,
  type FaultProxy,
  type PrivateAzurite,
  startFaultProxy,
  startPrivateAzurite,
  type TestContainer,
  testContainer,
} from "../support/azurite.js";
import { freePort } from "../support/ports.js";
import { startProxy, type TcpProxy } from "../support/tcp-proxy.js";

const server = await azuriteServer();
const live = server as AzuriteServer;

async function unavailable(promise: Promise<unknown>): Promise<StoreUnavailableError> {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(StoreUnavailableError);
  return error as StoreUnavailableError;
}

describe("AzureObjects: an endpoint that cannot be reached", () => {
  it("refused connections are StoreUnavailableError, writes not maybe-committed", async () => {
    const url = `http://127.0.0.1:${await freePort()}/devstoreaccount1`;
    const options = {
      container: "nowhere",
      connectionString: azuriteConnectionString(url),
      requestTimeoutMs: 3000,
    };
    await unavailable(createAzureObjects(options));
    const objects = await createAzureObjects({ ...options, readOnly: true });
    await unavailable(objects.get("a"));
    await unavailable(objects.list("", { delimiter: "/" }));
    await unavailable(objects.delete("a"));
    await unavailable(objects.deleteMany(["a", "b"]));
    expect((await unavailable(objects.put("a", "x"))).maybeCommitted).toBe(false);
    expect((await unavailable(objects.put("a", "x", { ifNoneMatch: "*" }))).maybeCommitted).toBe(false);
  });

  describe("a server that accepts connections and never answers", () => {
    let hole: Server;
    const sockets = new Set<Socket>();
    beforeAll(async () => {
      hole = createServer((socket) => {
        sockets.add(socket);
        socket.on("error", () => {});
      });
      await new Promise<void>((resolve) => hole.listen(0, "127.0.0.1", resolve));
    });
    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => hole.close(resolve));
    });

    it("every call ends with StoreUnavailableError after requestTimeoutMs", async () => {
      const { port } = hole.address() as { port: number };
      const url = `http://127.0.0.1:${port}/devstoreaccount1`;
      const options = {
        container: "hole",
        connectionString: azuriteConnectionString(url),
        requestTimeoutMs: 800,
      };
      const error = await unavailable(createAzureObjects(options));
      expect(error.message).toMatch(/within 800 ms/);
      const objects = await createAzureObjects({ ...options, readOnly: true });
      await unavailable(objects.get("a"));
      await unavailable(objects.list(""));
      // The request was sent: it may have been applied.
      expect((await unavailable(objects.put("a", "x", { ifNoneMatch: "*" }))).maybeCommitted).toBe(true);
    });
  });
});

describe.skipIf(!server)("AzureObjects: a server killed mid-test", () => {
  let azurite: PrivateAzurite;
  beforeAll(async () => {
    azurite = await startPrivateAzurite();
  });
  afterAll(async () => {
    await azurite?.stop();
  });

  it("fails with StoreUnavailableError while down and recovers once restarted", async () => {
    const objects = await createAzureObjects({
      container: "outage",
      connectionString: azurite.connectionString,
      requestTimeoutMs: 3000,
    });
    const first = await objects.put("tip", "v1", { ifNoneMatch: "*" });
    expect(first.ok).toBe(true);
    await azurite.kill();
    await unavailable(objects.get("tip"));
    if (!first.ok) throw new Error("setup");
    await unavailable(objects.put("tip", "v2", { ifMatch: first.etag }));
    await unavailable(objects.list(""));
    await azurite.start();
    // In memory: the restarted server is empty, so the container is made again.
    await objects.ensureContainer();
    expect(await objects.get("tip")).toBeUndefined();
    expect((await objects.put("tip", "v3", { ifNoneMatch: "*" })).ok).toBe(true);
    expect((await objects.get("tip"))?.body.toString()).toBe("v3");
  });
});

describe.skipIf(!server)("AzureObjects: a persistent server stopped and started again", () => {
  let azurite: PrivateAzurite;
  beforeAll(async () => {
    azurite = await startPrivateAzurite({ persistent: true });
  });
  afterAll(async () => {
    await azurite?.stop();
  });

  it("keeps what it acknowledged, and the same client goes on", async () => {
    const objects = await createAzureObjects({
      container: "kept",
      connectionString: azurite.connectionString,
      requestTimeoutMs: 3000,
    });
    const first = await objects.put("tip", "v1", { ifNoneMatch: "*" });
    if (!first.ok) throw new Error("setup");
    await azurite.kill("SIGTERM");
    await unavailable(objects.put("tip", "v2", { ifMatch: first.etag }));
    await azurite.start();
    const stored = await objects.get("tip");
    expect(stored?.body.toString()).toBe("v1");
    expect(stored?.etag).toBe(first.etag);
    expect((await objects.put("tip", "v2", { ifMatch: first.etag })).ok).toBe(true);
  });
});

describe.skipIf(!server)("AzureObjects: conditional puts with unknown outcomes", () => {
  let proxy: FaultProxy;
  let container: TestContainer;
  let objects: AzureObjects;
  let direct: AzureObjects;
  beforeAll(async () => {
    proxy = await startFaultProxy(live);
    container = testContainer(live, "faults");
    direct = await createAzureObjects({ container: container.name, connectionString: live.connectionString });
    objects = await createAzureObjects({
      container: container.name,
      connectionString: proxy.connectionString,
    });
  });
  afterAll(async () => {
    await proxy?.close();
    await container?.remove();
  });
  afterEach(() => {
    proxy.forwarded.length = 0;
  });

  const putOf = (name: string) => (method: string, path: string) =>
    method === "PUT" && path.includes(`/${name}`);
  const puts = (name: string) => proxy.forwarded.filter((r) => r.startsWith("PUT") && r.includes(`/${name}`));

  it("a 500 after the create was applied: read back, it is ours, ok", async () => {
    proxy.inject("500-after", 1, putOf("applied"));
    const result = await objects.put("applied", "mine", { ifNoneMatch: "*" });
    expect(result.ok).toBe(true);
    const stored = await direct.get("applied");
    expect(stored?.body.toString()).toBe("mine");
    expect(result.ok && result.etag === stored?.etag).toBe(true);
    expect(puts("applied")).toHaveLength(1);
  });

  it("a 500 before the create was applied: tried again, ok", async () => {
    proxy.inject("500-before", 2, putOf("retried"));
    const result = await objects.put("retried", "mine", { ifNoneMatch: "*" });
    expect(result.ok).toBe(true);
    expect((await direct.get("retried"))?.body.toString()).toBe("mine");
    expect(puts("retried")).toHaveLength(1);
  });

  it("a 500 after a compare-and-swap was applied: ok with the new ETag", async () => {
    const base = await direct.put("swapped", "v1", { ifNoneMatch: "*" });
    if (!base.ok) throw new Error("setup");
    proxy.inject("500-after", 1, putOf("swapped"));
    const result = await objects.put("swapped", "v2", { ifMatch: base.etag });
    expect(result.ok).toBe(true);
    const stored = await direct.get("swapped");
    expect(stored?.body.toString()).toBe("v2");
    expect(result.ok && result.etag === stored?.etag).toBe(true);
  });

  it("a 500, and the key holds another writer's object: not ok", async () => {
    await direct.put("taken", "theirs", { ifNoneMatch: "*" });
    proxy.inject("500-before", 1, putOf("taken"));
    expect(await objects.put("taken", "mine", { ifNoneMatch: "*" })).toEqual({ ok: false });
    expect((await direct.get("taken"))?.body.toString()).toBe("theirs");
  });

  it("a server that keeps answering 500: StoreOperationError, nothing written", async () => {
    proxy.inject("500-before", 100, putOf("broken"));
    await expect(objects.put("broken", "mine", { ifNoneMatch: "*" })).rejects.toBeInstanceOf(
      StoreOperationError,
    );
    expect(await direct.get("broken")).toBeUndefined();
  });

  it("the probe refuses a server that ignores conditions, or answers 501", async () => {
    proxy.inject("accept", 3, (method, path) => method === "PUT" && path.includes("cairn-probe-"));
    const ignored = await objects.probeConditions().catch((e: unknown) => e);
    expect(ignored).toBeInstanceOf(StoreUnsupportedError);
    expect((ignored as StoreUnsupportedError).feature).toMatch(/If-None-Match/);
    expect((ignored as StoreUnsupportedError).endpoint).toBe(`${proxy.url}/${container.name}`);
    proxy.inject("501", 1, (method, path) => method === "PUT" && path.includes("cairn-probe-"));
    await expect(objects.probeConditions()).rejects.toBeInstanceOf(StoreUnsupportedError);
    await objects.probeConditions();
  });
});

describe.skipIf(!server)("AzureObjects: a conditional put whose reply is lost", () => {
  let tcp: TcpProxy;
  let container: TestContainer;
  beforeAll(async () => {
    tcp = await startProxy("127.0.0.1", live.port);
    container = testContainer(live, "lost");
  });
  afterAll(async () => {
    await tcp?.close();
    await container?.remove();
  });

  it("is StoreUnavailableError with maybeCommitted, and the write did land", async () => {
    const url = `http://127.0.0.1:${tcp.port}/devstoreaccount1`;
    const objects = await createAzureObjects({
      container: container.name,
      connectionString: azuriteConnectionString(url),
      requestTimeoutMs: 1500,
    });
    tcp.holdReplies(true);
    const error = await unavailable(objects.put("held", "mine", { ifNoneMatch: "*" }));
    expect(error.maybeCommitted).toBe(true);
    tcp.holdReplies(false);
    tcp.cut();
    const direct = await createAzureObjects({
      container: container.name,
      connectionString: live.connectionString,
    });
    expect((await direct.get("held"))?.body.toString()).toBe("mine");
    // The same client works again once replies flow.
    expect(await objects.put("held", "again", { ifNoneMatch: "*" })).toEqual({ ok: false });
  });
});
