/**
 * The object-storage servers for the shared store suites: Ceph RGW (s3) and azurite (azure),
 * started on import (top-level await, so `describe.skipIf(!s3Up)` stays synchronous), with one
 * bucket and one container for the importing test file, removed by an `afterAll` this module
 * registers on the file when it is imported there. The credentials go into `process.env`, so
 * the store URLs work unchanged in child processes (runners, the CLI) spawned by the tests.
 * A server that cannot start skips its store with a loud warning, or fails the run under CI
 * (see rgw.ts and azurite.ts).
 */
import { afterAll } from "vitest";
import { azureConfigFromUrl, s3ConfigFromUrl } from "../../src/stores/cloud/config.js";
import type { ObjectClient } from "../../src/stores/object/objects.js";
import { type AzuriteServer, azuriteServer, testContainer } from "./azurite.js";
import { createTestBucket, deleteTestBucket, type RgwServer, rgwServer } from "./rgw.js";

const rgw: RgwServer | undefined = await rgwServer();
const azurite: AzuriteServer | undefined = await azuriteServer();

/** True when Ceph RGW is running and this file's bucket exists. */
export const s3Up = rgw !== undefined;
/** True when azurite is running. */
export const azureUp = azurite !== undefined;

const bucket = rgw ? await createTestBucket(rgw, "suite") : undefined;
const container = azurite ? testContainer(azurite, "suite") : undefined;

if (rgw) {
  process.env.AWS_ACCESS_KEY_ID = rgw.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = rgw.secretAccessKey;
  process.env.AWS_REGION = rgw.region;
  // The SDK warns on every client in every child process about Node 20; the tests read stderr.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
}
if (azurite) process.env.AZURE_STORAGE_CONNECTION_STRING = azurite.connectionString;

// Registered on the importing test file (each file has its own module instance): its bucket and
// container go once all of the file's tests are done, whichever suite handed out the URLs.
afterAll(async () => {
  if (rgw && bucket) await deleteTestBucket(rgw, bucket);
  if (container) await container.remove();
}, 120_000);

/** `s3://<bucket>/<prefix>?endpoint=…&region=…&forcePathStyle=true` on the test RGW. */
export function s3Url(prefix: string): string {
  if (!rgw || !bucket) throw new Error("s3Url: RGW is not running (check s3Up first)");
  const query = new URLSearchParams({ endpoint: rgw.endpoint, region: rgw.region, forcePathStyle: "true" });
  return `s3://${bucket}/${encodeURIComponent(prefix)}?${query}`;
}

/** `azblob://<container>/<prefix>` on the test azurite (connection string from the environment). */
export function azureUrl(prefix: string): string {
  if (!container) throw new Error("azureUrl: azurite is not running (check azureUp first)");
  return `azblob://${container.name}/${encodeURIComponent(prefix)}`;
}

/**
 * A raw client on the bucket or container and prefix of an `s3://` or `azblob://` store URL, for
 * tests that read or change stored objects around cairn. The caller closes it.
 */
export async function rawObjects(url: string): Promise<ObjectClient> {
  if (url.startsWith("s3:")) {
    const { singleWriter: _, ...config } = s3ConfigFromUrl(url);
    const { createS3Objects } = await import("../../src/stores/s3/objects.js");
    return createS3Objects(config as unknown as Parameters<typeof createS3Objects>[0]);
  }
  if (url.startsWith("azblob:")) {
    const { singleWriter: _, ...config } = azureConfigFromUrl(url);
    const { createAzureObjects } = await import("../../src/stores/azure/objects.js");
    return createAzureObjects(config as unknown as Parameters<typeof createAzureObjects>[0]);
  }
  throw new Error(`rawObjects: not an object store URL: ${url}`);
}

let counter = 0;
/** A store prefix unique to this process and call. */
export function objectPrefix(label: string): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${++counter}`;
}
