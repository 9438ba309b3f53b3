/**
 * The object-storage stores under benchmark: `s3` on Ceph RGW and `azure` on azurite, each in
 * its own bucket/container per bench process, each scenario folder a key prefix of it. Their
 * raw floors are one plain `PutObject` / block-blob `upload` of the JSON text per write and one
 * `GetObject` / `download` + `JSON.parse` per read, through an SDK client set up as the store's.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { basename, dirname, join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import type { ContainerClient } from "@azure/storage-blob";
import { CheckpointManager, type CheckpointManagerOptions } from "../../src/index.js";
import {
  type Azurite,
  azureBytes,
  azureContainer,
  benchBucket,
  type RgwServer,
  removeS3Bucket,
  rgwClient,
  runningRgw,
  s3Bytes,
  startAzurite,
  startRgw,
  stopRgwIfOurs,
} from "./object-servers.js";
import type { RawFloor } from "./raw-floors.js";
import { type Availability, describeError } from "./servers.js";
import type { BenchStore, Filler } from "./stores.js";

/** The key prefix of a scenario folder: its parent's name and its own (`…/s3/write` → `s3/write`). */
export const objectPrefix = (dir: string) =>
  [basename(dirname(dir)), basename(dir)].map((p) => p.replace(/[^A-Za-z0-9_.-]/g, "_")).join("/");

/**
 * Fills runs fast through the store's own API: the checkpoints are written into an in-process
 * memory store (same records, same lease-fenced write path), then the run is exported and
 * imported into the object store with `importPipeline`, which writes every object in parallel
 * (32 at a time) and commits them with one tip swap. 10,000 checkpoints take seconds, not the
 * ~20,000 sequential round trips of writing them one by one.
 */
async function importingFiller(options: CheckpointManagerOptions, dir: string): Promise<Filler> {
  const manager = new CheckpointManager({ strategy: "memory", config: { name: `fill:${dir}` } });
  const target = new CheckpointManager(options);
  const temp = await mkdtemp(join(os.tmpdir(), "cairn-bench-fill-"));
  return {
    manager,
    finish: async (runId) => {
      const path = join(temp, `${runId}.json`);
      await manager.exportPipeline(runId, path);
      await target.importPipeline(path);
      await rm(path, { force: true });
    },
    close: async () => {
      await manager.close();
      await target.close();
      await rm(temp, { recursive: true, force: true });
    },
  };
}

const collect = async (stream: NodeJS.ReadableStream): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString("utf8");
};

/**
 * Scenarios the object stores do not run yet: their fills write one checkpoint at a time, and
 * these servers take ~100 small PUTs a second (startup: 100,000 runs; walks: 20,000-checkpoint
 * runs would take many minutes each).
 */
const OBJECT_SKIPS = {
  startup: "fills 100,000 runs one checkpoint at a time, far too slow at ~100 PUTs/s (not measured)",
  walks: "fills 20,000-checkpoint runs one checkpoint at a time (not measured on object stores yet)",
} as const;

let rgw: RgwServer | undefined;
let s3: S3Client | undefined;

const rgwNeeded = (): [RgwServer, S3Client] => {
  if (!rgw || !s3) throw new Error("s3: connect() first");
  return [rgw, s3];
};

/** `s3` on Ceph RGW (started by scripts/rgw.sh, or the machine's running cluster). */
export const s3Store: BenchStore = {
  name: "s3",
  durability: "RGW acknowledges a PUT once RADOS has it (here one OSD on memstore: RAM, pool size 1)",
  rawFloor:
    "@aws-sdk/client-s3, one plain PutObject of the JSON text / GetObject + JSON.parse, keep-alive agent as the store's",
  countsRequests: true,
  skips: OBJECT_SKIPS,
  connect: async (): Promise<Availability> => {
    try {
      rgw = await startRgw();
      s3 = await rgwClient(rgw);
      const { CreateBucketCommand } = await import("@aws-sdk/client-s3");
      await s3.send(new CreateBucketCommand({ Bucket: benchBucket(process.pid) }));
      return {
        available: true,
        server: `Ceph RGW (scripts/rgw.sh) at ${rgw.endpoint}, bucket ${benchBucket(process.pid)}`,
        durability: s3Store.durability,
      };
    } catch (error) {
      return { available: false, reason: `cannot start or reach Ceph RGW: ${describeError(error)}` };
    }
  },
  options: (dir) => {
    const [server] = rgwNeeded();
    return {
      strategy: "s3",
      config: {
        bucket: benchBucket(process.pid),
        prefix: objectPrefix(dir),
        endpoint: server.endpoint,
        region: server.region,
        forcePathStyle: true,
        credentials: server.credentials,
      },
    };
  },
  openFiller: (dir) => importingFiller(s3Store.options(dir), dir),
  openRaw: async (dir): Promise<RawFloor> => {
    const [, client] = rgwNeeded();
    const { PutObjectCommand, GetObjectCommand } = await import("@aws-sdk/client-s3");
    const Bucket = benchBucket(process.pid);
    const key = (k: string) => `${objectPrefix(dir)}/${k}.json`;
    return {
      write: async (k, value) => {
        await client.send(
          new PutObjectCommand({
            Bucket,
            Key: key(k),
            Body: JSON.stringify(value),
            ContentType: "application/json",
          }),
        );
      },
      read: async (k) => {
        const out = await client.send(new GetObjectCommand({ Bucket, Key: key(k) }));
        return JSON.parse((await out.Body?.transformToString("utf8")) ?? "null");
      },
      close: async () => {},
    };
  },
  storedBytes: {
    method: "sum of the object sizes under the store's prefix (ListObjectsV2)",
    measure: (dir) => {
      const [, client] = rgwNeeded();
      return s3Bytes(client, benchBucket(process.pid), `${objectPrefix(dir)}/`);
    },
  },
  cleanup: async (pid) => {
    const server = rgw ?? (await runningRgw());
    if (!server) return "no RGW cluster running: nothing to remove";
    const client = s3 ?? (await rgwClient(server));
    const removed = await removeS3Bucket(client, benchBucket(pid));
    client.destroy();
    s3 = undefined;
    return `${removed}; ${await stopRgwIfOurs()}`;
  },
};

let azurite: Azurite | undefined;
let container: ContainerClient | undefined;

const azuriteNeeded = (): [Azurite, ContainerClient] => {
  if (!azurite || !container) throw new Error("azure: connect() first");
  return [azurite, container];
};

/** `azure` on azurite (in memory, started per bench child by scripts/azurite.mjs). */
export const azureStore: BenchStore = {
  name: "azure",
  durability: "azurite --inMemoryPersistence: process memory (the emulator keeps nothing on disk)",
  rawFloor: "@azure/storage-blob, one block-blob upload of the JSON text / download + JSON.parse",
  countsRequests: true,
  skips: OBJECT_SKIPS,
  connect: async (): Promise<Availability> => {
    try {
      azurite = await startAzurite();
      container = await azureContainer(azurite.connectionString, benchBucket(process.pid));
      return {
        available: true,
        server: `azurite (scripts/azurite.mjs, in memory) at ${azurite.url}, container ${benchBucket(process.pid)}`,
        durability: azureStore.durability,
      };
    } catch (error) {
      await azurite?.stop();
      return { available: false, reason: `cannot start azurite: ${describeError(error)}` };
    }
  },
  options: (dir) => {
    const [server] = azuriteNeeded();
    return {
      strategy: "azure",
      config: {
        container: benchBucket(process.pid),
        prefix: objectPrefix(dir),
        connectionString: server.connectionString,
      },
    };
  },
  openFiller: (dir) => importingFiller(azureStore.options(dir), dir),
  openRaw: async (dir): Promise<RawFloor> => {
    const [, client] = azuriteNeeded();
    const blob = (k: string) => client.getBlockBlobClient(`${objectPrefix(dir)}/${k}.json`);
    return {
      write: async (k, value) => {
        const text = JSON.stringify(value);
        await blob(k).upload(text, Buffer.byteLength(text), {
          blobHTTPHeaders: { blobContentType: "application/json" },
        });
      },
      read: async (k) => {
        const body = (await blob(k).download()).readableStreamBody;
        return JSON.parse(body ? await collect(body) : "null");
      },
      close: async () => {},
    };
  },
  storedBytes: {
    method: "sum of the blob sizes under the store's prefix (List Blobs)",
    measure: (dir) => {
      const [, client] = azuriteNeeded();
      return azureBytes(client, `${objectPrefix(dir)}/`);
    },
  },
  cleanup: async () => {
    // The parent after a crashed child: azurite stopped with the child (its stdin closed).
    if (!azurite || !container) return "azurite stopped with its bench child: nothing to remove";
    await container.deleteIfExists();
    await azurite.stop();
    azurite = undefined;
    container = undefined;
    return `deleted container ${benchBucket(process.pid)} and stopped azurite`;
  },
};
