/**
 * The published conformance kit on the azure store against azurite (Microsoft's emulator, started
 * by the tests): one container for the file, a fresh prefix per test.
 */
import { describeStoreConformance } from "cairn-pipelines/testing";
import { afterAll, describe } from "vitest";
import { createAzureObjects } from "../../src/stores/azure/objects.js";
import { azuriteServer, testContainer } from "../support/azurite.js";
import { objectHarness } from "../support/object-harness.js";

const server = await azuriteServer();

describe.skipIf(!server)("azure", () => {
  if (!server) return;
  const container = testContainer(server, "conf");
  afterAll(() => container.remove());
  describeStoreConformance(
    "azure",
    objectHarness("conf", {
      spec: (prefix) => ({
        strategy: "azure",
        config: { container: container.name, prefix, connectionString: server.connectionString },
      }),
      raw: (prefix) =>
        createAzureObjects({ container: container.name, prefix, connectionString: server.connectionString }),
    }),
  );
});
