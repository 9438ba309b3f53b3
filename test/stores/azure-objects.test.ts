/**
 * The Azure Blob `ObjectClient` against a real azurite: every method, the conditional-write
 * semantics the store relies on, races, listing order and pagination, and the conditions probe.
 */
import { BlobServiceClient } from "@azure/storage-blob";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ClosedError,
  InvalidArgumentError,
  InvalidConfigError,
  MissingDriverError,
  StoreOperationError,
} from "../../src/core/errors.js";
import { type AzureObjects, createAzureObjects } from "../../src/stores/azure/objects.js";
import { loadAzureSdk } from "../../src/stores/azure/sdk.js";
import { type AzuriteServer, azuriteServer, type TestContainer, testContainer } from "../support/azurite.js";

const server = await azuriteServer();
/** The server inside the suites that run only when it is up. */
const live = server as AzuriteServer;

/** Every key, page by page. */
async function listAll(
  objects: AzureObjects,
  prefix: string,
  options: { maxKeys?: number; startAfter?: string; delimiter?: string } = {},
) {
  const keys: string[] = [];
  const prefixes: string[] = [];
  let continuation: string | undefined;
  let pages = 0;
  do {
    const page = await objects.list(prefix, { ...options, continuation });
    keys.push(...page.keys);
    prefixes.push(...page.prefixes);
    continuation = page.continuation;
    pages++;
  } while (continuation !== undefined);
  return { keys, prefixes, pages };
}

describe("AzureObjects: configuration and driver", () => {
  it("reports every configuration problem at once", async () => {
    const error = await createAzureObjects({
      container: "Bad_Name",
      prefix: "a//b",
      requestTimeoutMs: 0,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidConfigError);
    const problems = (error as InvalidConfigError).problems.join("\n");
    expect(problems).toMatch(/connectionString, accountUrl/);
    expect(problems).toMatch(/not a valid Azure container name/);
    expect(problems).toMatch(/empty path segment/);
    expect(problems).toMatch(/requestTimeoutMs/);
    await expect(
      createAzureObjects({ container: "ok-name", connectionString: "x", accountUrl: "https://a.example" }),
    ).rejects.toThrow(/only one of/);
    await expect(
      createAzureObjects({ container: "ok-name", connectionString: "x", bogus: 1 } as never),
    ).rejects.toThrow(/no option "bogus"/);
  });

  it("is a MissingDriverError naming @azure/storage-blob when the SDK is not installed", async () => {
    const missing = () =>
      Promise.reject(Object.assign(new Error("Cannot find package"), { code: "ERR_MODULE_NOT_FOUND" }));
    const error = await loadAzureSdk(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MissingDriverError);
    expect((error as MissingDriverError).packageName).toBe("@azure/storage-blob");
    await expect(
      createAzureObjects({ container: "abc", connectionString: "UseDevelopmentStorage=true" }, missing),
    ).rejects.toBeInstanceOf(MissingDriverError);
  });
});

describe.skipIf(!server)("AzureObjects on azurite", () => {
  let container: TestContainer;
  let objects: AzureObjects;
  const extra: TestContainer[] = [];

  beforeAll(async () => {
    container = testContainer(live, "objects");
    objects = await createAzureObjects({
      container: container.name,
      prefix: "/base/p/",
      connectionString: container.connectionString,
    });
  });
  afterAll(async () => {
    await objects?.close();
    await container?.remove();
    for (const c of extra) await c.remove();
  });

  let n = 0;
  const key = (label: string) => `k${++n}/${label}`;

  it("names its location and creates the container", async () => {
    expect(objects.location).toBe(`azblob://${container.name}/base/p (${live.url}/${container.name})`);
    const raw = BlobServiceClient.fromConnectionString(live.connectionString).getContainerClient(
      container.name,
    );
    expect(await raw.exists()).toBe(true);
  });

  it("puts, gets and deletes objects under the prefix", async () => {
    const k = key("a.json");
    expect(await objects.get(k)).toBeUndefined();
    const put = await objects.put(k, '{"x":1}');
    expect(put.ok).toBe(true);
    const got = await objects.get(k);
    expect(got?.body.toString()).toBe('{"x":1}');
    expect(put.ok && got?.etag === put.etag).toBe(true);
    expect(Number.isNaN(got?.serverTime.getTime())).toBe(false);
    // The blob really lives under the prefix.
    const raw = BlobServiceClient.fromConnectionString(live.connectionString).getContainerClient(
      container.name,
    );
    expect(await raw.getBlobClient(`base/p/${k}`).exists()).toBe(true);
    // Unconditional puts overwrite.
    await objects.put(k, Buffer.from("second"));
    expect((await objects.get(k))?.body.toString()).toBe("second");
    expect(await objects.delete(k)).toBe(true);
    expect(await objects.delete(k)).toBe(false);
    expect(await objects.get(k)).toBeUndefined();
  });

  it("create-only: the first write wins, the second is refused and changes nothing", async () => {
    const k = key("create");
    const first = await objects.put(k, "one", { ifNoneMatch: "*" });
    expect(first.ok).toBe(true);
    expect(await objects.put(k, "two", { ifNoneMatch: "*" })).toEqual({ ok: false });
    expect((await objects.get(k))?.body.toString()).toBe("one");
  });

  it("compare-and-swap: the current ETag wins, a stale one and a missing key are refused", async () => {
    const k = key("cas");
    const v1 = await objects.put(k, "v1", { ifNoneMatch: "*" });
    if (!v1.ok) throw new Error("setup");
    const v2 = await objects.put(k, "v2", { ifMatch: v1.etag });
    expect(v2.ok).toBe(true);
    expect(await objects.put(k, "v3", { ifMatch: v1.etag })).toEqual({ ok: false });
    expect((await objects.get(k))?.body.toString()).toBe("v2");
    // An ETag without its quotes works too.
    if (!v2.ok) throw new Error("v2");
    const v4 = await objects.put(k, "v4", { ifMatch: v2.etag.replace(/"/g, "") });
    expect(v4.ok).toBe(true);
    expect(await objects.put(key("absent"), "x", { ifMatch: v1.etag })).toEqual({ ok: false });
    expect(await objects.get(`k${n}/absent`)).toBeUndefined();
  });

  it("20 concurrent create-only writes of one key: exactly one succeeds, and its body is stored", async () => {
    const k = key("race");
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => objects.put(k, `writer ${i}`, { ifNoneMatch: "*" })),
    );
    const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
    expect(winners).toHaveLength(1);
    expect((await objects.get(k))?.body.toString()).toBe(`writer ${winners[0]}`);
  });

  it("10 concurrent compare-and-swaps on one ETag: exactly one succeeds", async () => {
    const k = key("cas-race");
    const base = await objects.put(k, "base", { ifNoneMatch: "*" });
    if (!base.ok) throw new Error("setup");
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => objects.put(k, `cas ${i}`, { ifMatch: base.etag })),
    );
    const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
    expect(winners).toHaveLength(1);
    const stored = await objects.get(k);
    expect(stored?.body.toString()).toBe(`cas ${winners[0]}`);
    const winner = results[winners[0] as number];
    expect(winner?.ok && winner.etag === stored?.etag).toBe(true);
  });

  it("a 412 about a lease is an error, not a lost race", async () => {
    const k = key("leased");
    await objects.put(k, "x");
    const raw = BlobServiceClient.fromConnectionString(live.connectionString).getContainerClient(
      container.name,
    );
    const blob = raw.getBlobClient(`base/p/${k}`);
    await blob.getBlobLeaseClient().acquireLease(15);
    const current = await objects.get(k);
    await expect(objects.put(k, "y", { ifMatch: current?.etag ?? "" })).rejects.toBeInstanceOf(
      StoreOperationError,
    );
    // deleteMany: a blob that cannot be deleted fails the call (a missing one does not).
    const other = key("plain");
    await objects.put(other, "z");
    const error = await objects.deleteMany([other, k, key("never")]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreOperationError);
    expect(String((error as Error).message)).toMatch(/LeaseIdMissing|412/);
    expect(await objects.get(other)).toBeUndefined();
    await blob.getBlobLeaseClient().breakLease(0);
  });

  it("deleteMany removes hundreds of keys in batches, ignoring missing ones", async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `bulk/${String(i).padStart(3, "0")}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((k) => objects.put(k, k)));
    }
    expect((await listAll(objects, "bulk/")).keys).toHaveLength(300);
    await objects.deleteMany([...keys, "bulk/missing", keys[0] as string]);
    expect((await listAll(objects, "bulk/")).keys).toEqual([]);
    await objects.deleteMany([]);
  });

  describe("listing", () => {
    const names = ["ls/a", "ls/b/1", "ls/b/2", "ls/c", "ls/d/x/1", "ls/e", "lt/other"];
    beforeAll(async () => {
      await Promise.all(names.map((k) => objects.put(k, k)));
    });

    it("lists keys in order, page by page", async () => {
      const all = await listAll(objects, "ls/", { maxKeys: 2 });
      expect(all.keys).toEqual(names.slice(0, 6));
      expect(all.pages).toBe(3);
      expect(all.prefixes).toEqual([]);
      expect((await objects.list("ls/")).continuation).toBeUndefined();
    });

    it("groups by a delimiter", async () => {
      const all = await listAll(objects, "ls/", { delimiter: "/", maxKeys: 2 });
      expect(all.keys).toEqual(["ls/a", "ls/c", "ls/e"]);
      expect(all.prefixes).toEqual(["ls/b/", "ls/d/"]);
    });

    for (const listStartFrom of [true, false]) {
      it(`starts after a key (${listStartFrom ? "startFrom" : "emulated"})`, async () => {
        const client =
          listStartFrom === true
            ? objects
            : await createAzureObjects({
                container: container.name,
                prefix: "base/p",
                connectionString: container.connectionString,
                listStartFrom: false,
              });
        expect((await listAll(client, "ls/", { startAfter: "ls/b/1" })).keys).toEqual([
          "ls/b/2",
          "ls/c",
          "ls/d/x/1",
          "ls/e",
        ]);
        // Not a key itself: everything above it.
        expect((await listAll(client, "ls/", { startAfter: "ls/bz", maxKeys: 1 })).keys).toEqual([
          "ls/c",
          "ls/d/x/1",
          "ls/e",
        ]);
        // Pages of one key: every page but the last is full.
        const paged = await listAll(client, "ls/", { startAfter: "ls/c", maxKeys: 1 });
        expect(paged.keys).toEqual(["ls/d/x/1", "ls/e"]);
        expect((await listAll(client, "ls/", { startAfter: "ls/e" })).keys).toEqual([]);
        const grouped = await listAll(client, "ls/", { startAfter: "ls/b/1", delimiter: "/" });
        expect(grouped.keys).toEqual(["ls/c", "ls/e"]);
        expect(grouped.prefixes).toEqual(["ls/b/", "ls/d/"]);
        expect((await listAll(client, "ls/", { startAfter: "ls/c", delimiter: "/" })).prefixes).toEqual([
          "ls/d/",
        ]);
        // As S3's StartAfter: a prefix is listed when it holds a key after startAfter, not otherwise.
        const onLast = await listAll(client, "ls/", { startAfter: "ls/b/2", delimiter: "/" });
        expect(onLast.prefixes).toEqual(["ls/d/"]);
        const onPrefix = await listAll(client, "ls/", { startAfter: "ls/b/", delimiter: "/", maxKeys: 1 });
        expect(onPrefix.prefixes).toEqual(["ls/b/", "ls/d/"]);
        expect(onPrefix.keys).toEqual(["ls/c", "ls/e"]);
      });
    }

    it("lists index-style names (hex digits and ~) and other characters in byte order", async () => {
      const names = [
        "ord/9f~a0~",
        "ord/9fa0~01~",
        "ord/9f~~",
        "ord/a~",
        "ord/00~ff~",
        "ord/é x",
        "ord/Z-_.()",
      ];
      await Promise.all(names.map((k) => objects.put(k, k)));
      const sorted = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      expect((await listAll(objects, "ord/", { maxKeys: 3 })).keys).toEqual(sorted);
      expect((await objects.get("ord/é x"))?.body.toString()).toBe("ord/é x");
    });

    it("rejects a page size out of range", async () => {
      await expect(objects.list("ls/", { maxKeys: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(objects.list("ls/", { maxKeys: 1001 })).rejects.toBeInstanceOf(InvalidArgumentError);
    });
  });

  it("a read-only client does not create the container, and reads it as empty", async () => {
    const c = testContainer(live, "readonly");
    extra.push(c);
    const ro = await createAzureObjects({
      container: c.name,
      connectionString: c.connectionString,
      readOnly: true,
    });
    const raw = BlobServiceClient.fromConnectionString(live.connectionString).getContainerClient(c.name);
    expect(await raw.exists()).toBe(false);
    expect(await ro.get("cairn-layout.json")).toBeUndefined();
    expect(await ro.list("")).toEqual({ keys: [], prefixes: [] });
    expect(await ro.delete("x")).toBe(false);
  });

  it("works with a caller's ContainerClient, and with accountUrl + credential", async () => {
    const c = testContainer(live, "own");
    extra.push(c);
    const { StorageSharedKeyCredential } = await import("@azure/storage-blob");
    const { AZURITE_ACCOUNT, AZURITE_KEY } = await import("../support/azurite.js");
    const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
    const viaUrl = await createAzureObjects({ container: c.name, accountUrl: live.url, credential });
    const created = await viaUrl.put("x", "1", { ifNoneMatch: "*" });
    expect(created.ok).toBe(true);
    const containerClient = BlobServiceClient.fromConnectionString(live.connectionString).getContainerClient(
      c.name,
    );
    const viaClient = await createAzureObjects({ containerClient });
    expect((await viaClient.get("x"))?.body.toString()).toBe("1");
    expect(await viaClient.put("x", "2", { ifNoneMatch: "*" })).toEqual({ ok: false });
    if (!created.ok) throw new Error("setup");
    expect((await viaClient.put("x", "2", { ifMatch: created.etag })).ok).toBe(true);
  });

  it("works through a container SAS, which may not create containers", async () => {
    const { ContainerClient, ContainerSASPermissions } = await import("@azure/storage-blob");
    const owner = BlobServiceClient.fromConnectionString(live.connectionString).getContainerClient(
      container.name,
    );
    const sasUrl = await owner.generateSasUrl({
      permissions: ContainerSASPermissions.parse("racwdl"),
      expiresOn: new Date(Date.now() + 3_600_000),
    });
    const viaSas = await createAzureObjects({ containerClient: new ContainerClient(sasUrl), prefix: "sas" });
    expect(viaSas.location).not.toMatch(/sig=/);
    const created = await viaSas.put("k", "v", { ifNoneMatch: "*" });
    expect(created.ok).toBe(true);
    expect(await viaSas.put("k", "w", { ifNoneMatch: "*" })).toEqual({ ok: false });
    expect((await viaSas.list("")).keys).toEqual(["k"]);
    expect(await owner.getBlobClient("sas/k").exists()).toBe(true);
    await viaSas.deleteMany(["k", "gone"]);
    expect(await owner.getBlobClient("sas/k").exists()).toBe(false);
    expect((await viaSas.list("")).keys).toEqual([]);
  });

  it("refuses every call after close()", async () => {
    const closing = await createAzureObjects({
      container: container.name,
      connectionString: live.connectionString,
    });
    await closing.close();
    await closing.close();
    await expect(closing.get("x")).rejects.toBeInstanceOf(ClosedError);
    await expect(closing.list("")).rejects.toBeInstanceOf(ClosedError);
    await expect(closing.put("x", "1", { ifNoneMatch: "*" })).rejects.toBeInstanceOf(ClosedError);
  });

  it("the conditions probe passes on azurite and leaves nothing behind", async () => {
    const c = testContainer(live, "probe");
    extra.push(c);
    const probed = await createAzureObjects({ container: c.name, connectionString: c.connectionString });
    await probed.probeConditions();
    expect(await probed.list("")).toEqual({ keys: [], prefixes: [] });
  });
});
