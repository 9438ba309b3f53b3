/**
 * The Ceph RGW server the s3 tests use: `scripts/rgw.sh start` once per process (the script
 * itself starts one cluster per machine and reuses it). When it cannot start, the tests are
 * skipped with a loud message, except under CI (`CI` set), where that fails the run. The
 * cluster is left running for the next test file and run; `scripts/rgw.sh stop` removes it.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";

/** Where and how to reach the test server. */
export interface RgwServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

const SCRIPT = fileURLToPath(new URL("../../scripts/rgw.sh", import.meta.url));
let started: Promise<RgwServer | undefined> | undefined;

async function start(): Promise<RgwServer | undefined> {
  try {
    const { stdout } = await promisify(execFile)("bash", [SCRIPT, "start"], { timeout: 120_000 });
    const env = Object.fromEntries(
      stdout
        .split("\n")
        .filter((line) => line.includes("="))
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    const server = {
      endpoint: env.CAIRN_TEST_S3_ENDPOINT ?? "",
      accessKeyId: env.CAIRN_TEST_S3_ACCESS_KEY ?? "",
      secretAccessKey: env.CAIRN_TEST_S3_SECRET_KEY ?? "",
      region: env.CAIRN_TEST_S3_REGION ?? "us-east-1",
    };
    if (!server.endpoint) throw new Error(`scripts/rgw.sh start printed no endpoint: ${stdout}`);
    return server;
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr?.trim() || String(error);
    const message = `Ceph RGW could not be started by scripts/rgw.sh: ${detail}`;
    if (process.env.CI)
      throw new Error(`${message}\nCI requires it (apt-get install -y radosgw ceph-mon ceph-osd)`);
    console.warn(`\n⚠⚠⚠ SKIPPING s3 (RGW) tests: ${message}. ⚠⚠⚠\n`);
    return undefined;
  }
}

/** The running RGW server (started on first call, memoized), or undefined when it cannot start outside CI. */
export function rgwServer(): Promise<RgwServer | undefined> {
  started ??= start();
  return started;
}

/** A raw SDK client for the server (fixtures and cleanup), path-style. */
export function rawS3(server: RgwServer): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
  });
}

let counter = 0;
/** Creates a bucket with a name unique to this process and call. */
export async function createTestBucket(server: RgwServer, label: string): Promise<string> {
  const bucket = `cairn-${label}-${process.pid}-${Date.now().toString(36)}-${++counter}`
    .toLowerCase()
    .slice(0, 63);
  const client = rawS3(server);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return bucket;
}

/** Deletes every object of the bucket, then the bucket. */
export async function deleteTestBucket(server: RgwServer, bucket: string): Promise<void> {
  const client = rawS3(server);
  try {
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
      if (keys.length === 0) break;
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}
