/**
 * The conditions probe: `s3rver` accepts `If-None-Match: *` and overwrites anyway, so the S3
 * client must refuse it with StoreUnsupportedError; Ceph RGW enforces the condition and passes.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, StoreUnsupportedError } from "../../src/core/errors.js";
import { createS3Objects } from "../../src/stores/s3/objects.js";
import { freePort } from "../support/ports.js";
import { createTestBucket, deleteTestBucket, rgwServer } from "../support/rgw.js";

interface S3rverInstance {
  run(): Promise<unknown>;
  close(): Promise<unknown>;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

describe("probeConditions against s3rver (ignores If-None-Match)", () => {
  let s3rver: S3rverInstance;
  let directory: string;
  let endpoint: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "cairn-s3rver-"));
    const port = await freePort();
    // No type declarations ship with s3rver: a non-literal specifier keeps tsc quiet.
    const specifier = "s3rver";
    const S3rver = ((await import(specifier)) as { default: S3rverConstructor }).default;
    s3rver = new S3rver({
      address: "127.0.0.1",
      port,
      silent: true,
      directory,
      configureBuckets: [{ name: "probe", configs: [] }],
    });
    await s3rver.run();
    endpoint = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await s3rver?.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it("refuses the server with StoreUnsupportedError naming the endpoint and the feature", async () => {
    const objects = await createS3Objects({
      bucket: "probe",
      prefix: "cairn",
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });
    try {
      // s3rver really does overwrite: the condition is accepted and ignored.
      expect((await objects.put("k", "one", { ifNoneMatch: "*" })).ok).toBe(true);
      expect((await objects.put("k", "two", { ifNoneMatch: "*" })).ok).toBe(true);
      expect((await objects.get("k"))?.body.toString()).toBe("two");

      const error = await objects.probeConditions().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnsupportedError);
      const unsupported = error as StoreUnsupportedError;
      expect(unsupported.code).toBe(ErrorCode.StoreUnsupported);
      expect(unsupported.code).toBe("CAIRN_STORE_UNSUPPORTED");
      expect(unsupported.endpoint).toBe(endpoint);
      expect(unsupported.feature).toBe("create-only writes (If-None-Match: *)");
      expect(unsupported.message).toContain("singleWriter: true");
      // The probe cleans up after itself.
      expect((await objects.list("cairn-probe-")).keys).toEqual([]);
    } finally {
      await objects.close();
    }
  });
});

describe("probeConditions against a server that answers 501 to If-None-Match", () => {
  it("refuses it with StoreUnsupportedError", async () => {
    const stub = createHttpServer((request, response) => {
      request.resume();
      request.on("end", () => {
        const conditional = request.headers["if-none-match"] !== undefined;
        response.writeHead(conditional ? 501 : 200, { "content-type": "application/xml", etag: '"e"' });
        response.end(
          conditional
            ? "<Error><Code>NotImplemented</Code><Message>conditional writes</Message></Error>"
            : "",
        );
      });
    });
    await new Promise<void>((resolve) => stub.listen(0, "127.0.0.1", resolve));
    const endpoint = `http://127.0.0.1:${(stub.address() as { port: number }).port}`;
    const objects = await createS3Objects({
      bucket: "b",
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: "a", secretAccessKey: "b" },
    });
    try {
      const error = await objects.probeConditions().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnsupportedError);
      expect((error as StoreUnsupportedError).endpoint).toBe(endpoint);
    } finally {
      await objects.close();
      stub.close();
    }
  });
});

const rgw = await rgwServer();

describe.skipIf(!rgw)("probeConditions against Ceph RGW", () => {
  let bucket: string;
  // biome-ignore lint/style/noNonNullAssertion: skipped when undefined
  const server = rgw!;
  beforeAll(async () => {
    bucket = await createTestBucket(server, "probe");
  });
  afterAll(async () => {
    if (bucket) await deleteTestBucket(server, bucket);
  });

  it("passes and leaves nothing behind", async () => {
    const objects = await createS3Objects({
      bucket,
      prefix: "x",
      endpoint: server.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    try {
      await objects.probeConditions();
      expect((await objects.list("")).keys).toEqual([]);
    } finally {
      await objects.close();
    }
  });
});
