/**
 * The published conformance kit on the s3 store against Ceph RGW (a private cluster started by
 * the tests, scripts/rgw.sh): one bucket for the file, a fresh prefix per test.
 */
import { describeStoreConformance } from "cairn-pipelines/testing";
import { afterAll, beforeAll, describe } from "vitest";
import { createS3Objects } from "../../src/stores/s3/objects.js";
import { objectHarness } from "../support/object-harness.js";
import { createTestBucket, deleteTestBucket, rgwServer } from "../support/rgw.js";

const server = await rgwServer();

describe.skipIf(!server)("s3", () => {
  if (!server) return;
  let bucket = "";
  beforeAll(async () => {
    bucket = await createTestBucket(server, "conf");
  });
  afterAll(() => deleteTestBucket(server, bucket));
  const connection = () => ({
    bucket,
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  describeStoreConformance(
    "s3",
    objectHarness("conf", {
      spec: (prefix) => ({ strategy: "s3", config: { ...connection(), prefix } }),
      raw: (prefix) => createS3Objects({ ...connection(), prefix }),
    }),
  );
});
