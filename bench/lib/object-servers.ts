/**
 * The object-storage servers of the benchmark: Ceph RGW (`scripts/rgw.sh`) for `s3` and azurite
 * (`scripts/azurite.mjs`) for `azure`. A child measuring one of them starts the server it needs
 * (RGW: or finds the machine's running cluster), writes into one bucket or container of its own,
 * `cairn-bench-<pid>`, and removes it at the end. RGW is stopped again only when this process
 * started it (the tests share the machine's cluster); azurite runs in memory and stops with the
 * child (its stdin is a pipe from this process).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { S3Client } from "@aws-sdk/client-s3";
import type { ContainerClient } from "@azure/storage-blob";
import { describeError } from "./servers.js";

const RGW_SCRIPT = fileURLToPath(new URL("../../scripts/rgw.sh", import.meta.url));
const AZURITE_SCRIPT = fileURLToPath(new URL("../../scripts/azurite.mjs", import.meta.url));
const run = promisify(execFile);

/** The bucket or container a bench process writes into. */
export const benchBucket = (pid: number) => `cairn-bench-${pid}`;

/** How to reach the RGW cluster. */
export interface RgwServer {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

function parseEnv(stdout: string): RgwServer {
  const env = new Map(
    stdout
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)] as const),
  );
  const endpoint = env.get("CAIRN_TEST_S3_ENDPOINT");
  if (!endpoint) throw new Error(`scripts/rgw.sh printed no endpoint: ${stdout.trim()}`);
  return {
    endpoint,
    region: env.get("CAIRN_TEST_S3_REGION") ?? "us-east-1",
    credentials: {
      accessKeyId: env.get("CAIRN_TEST_S3_ACCESS_KEY") ?? "",
      secretAccessKey: env.get("CAIRN_TEST_S3_SECRET_KEY") ?? "",
    },
  };
}

/** Whether this process started the cluster (then it stops it at the end). */
let startedRgw = false;

/** Finds the running cluster or starts one (about 13 s cold); throws with the script's output. */
export async function startRgw(): Promise<RgwServer> {
  const running = await run("bash", [RGW_SCRIPT, "status"]).then(
    () => true,
    () => false,
  );
  try {
    const { stdout } = await run("bash", [RGW_SCRIPT, "start"], { timeout: 120_000 });
    startedRgw = !running;
    return parseEnv(stdout);
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr?.trim() || describeError(error);
    throw new Error(`scripts/rgw.sh start failed: ${detail.split("\n").slice(-3).join(" | ")}`);
  }
}

/** The running cluster, or undefined (the parent cleaning up after a child that died). */
export async function runningRgw(): Promise<RgwServer | undefined> {
  try {
    return parseEnv((await run("bash", [RGW_SCRIPT, "env"])).stdout);
  } catch {
    return undefined;
  }
}

/** Stops the cluster when this process started it; says what it did. */
export async function stopRgwIfOurs(): Promise<string> {
  if (!startedRgw) return "left the machine's RGW cluster running (this bench did not start it)";
  await run("bash", [RGW_SCRIPT, "stop"], { timeout: 60_000 });
  startedRgw = false;
  return "stopped the RGW cluster this bench started";
}

/** A plain S3 client for the cluster, configured as the store configures its own (keep-alive, 64 sockets). */
export async function rgwClient(server: RgwServer): Promise<S3Client> {
  const { S3Client } = await import("@aws-sdk/client-s3");
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: server.credentials,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: { httpAgent: { keepAlive: true, maxSockets: 64 } },
  });
}

/** Every object under `prefix` (all of the bucket when empty): key and size, page by page. */
async function* listS3(client: S3Client, bucket: string, prefix: string) {
  const { ListObjectsV2Command } = await import("@aws-sdk/client-s3");
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    yield (page.Contents ?? []).map((o) => ({ key: o.Key ?? "", size: o.Size ?? 0 }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** Sum of the sizes of the objects under `prefix`, by listing. */
export async function s3Bytes(client: S3Client, bucket: string, prefix: string): Promise<number> {
  let sum = 0;
  for await (const page of listS3(client, bucket, prefix)) for (const o of page) sum += o.size;
  return sum;
}

/** Empties the bucket in batches of 1,000 (DeleteObjects) and deletes it; says how many objects. */
export async function removeS3Bucket(client: S3Client, bucket: string): Promise<string> {
  const { DeleteObjectsCommand, DeleteBucketCommand } = await import("@aws-sdk/client-s3");
  let deleted = 0;
  try {
    // Listing again from the start after each batch: deleting while paginating can skip keys.
    for (;;) {
      const first = await listS3(client, bucket, "").next();
      const keys = first.done ? [] : first.value;
      if (keys.length === 0) break;
      const result = await client.send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: { Objects: keys.map((o) => ({ Key: o.key })), Quiet: true },
        }),
      );
      if (result.Errors && result.Errors.length > 0) {
        throw new Error(
          `DeleteObjects failed for ${result.Errors.length} keys: ${result.Errors[0]?.Message}`,
        );
      }
      deleted += keys.length;
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } catch (error) {
    if ((error as { name?: string }).name === "NoSuchBucket") return `bucket ${bucket} was already gone`;
    throw error;
  }
  return `deleted ${deleted} objects and bucket ${bucket}`;
}

/** A running azurite: its connection string, and how to stop it. */
export interface Azurite {
  connectionString: string;
  url: string;
  stop(): Promise<void>;
}

/** Starts azurite in memory on a free port (about 3 s); it stops when this process exits. */
export function startAzurite(): Promise<Azurite> {
  const child: ChildProcess = spawn(process.execPath, [AZURITE_SCRIPT, "--watch-stdin"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      // Referenced again while we wait, or an otherwise idle process would exit mid-await.
      child.ref();
      const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
      child.once("exit", () => {
        clearTimeout(kill);
        resolve();
      });
      (child.stdin as Writable).end();
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`azurite did not start within 45 s: ${output.slice(-500)}`));
    }, 45_000);
    (child.stderr as Readable).on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    let line = "";
    (child.stdout as Readable).on("data", (chunk: Buffer) => {
      line += chunk.toString();
      if (!line.includes("\n")) return;
      clearTimeout(timer);
      try {
        const info = JSON.parse(line.slice(0, line.indexOf("\n"))) as {
          connectionString: string;
          url: string;
        };
        resolve({ connectionString: info.connectionString, url: info.url, stop });
      } catch (error) {
        void stop();
        reject(new Error(`scripts/azurite.mjs printed no JSON line: ${describeError(error)}`));
      }
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`scripts/azurite.mjs exited with ${code}: ${output.slice(-500)}`));
    });
    // The server must never keep a finished bench child alive; its pipes close with us.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) {
      (stream as unknown as { unref?: () => void } | null)?.unref?.();
    }
  });
}

/** The container `name` of the azurite account, created when missing. */
export async function azureContainer(connectionString: string, name: string): Promise<ContainerClient> {
  const { BlobServiceClient } = await import("@azure/storage-blob");
  const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(name);
  await container.createIfNotExists();
  return container;
}

/** Sum of the sizes of the blobs under `prefix`, by listing. */
export async function azureBytes(container: ContainerClient, prefix: string): Promise<number> {
  let sum = 0;
  for await (const blob of container.listBlobsFlat({ prefix })) sum += blob.properties.contentLength ?? 0;
  return sum;
}
