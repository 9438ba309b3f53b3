/**
 * Opens the object-storage stores: the SDK adapter (loaded only here, so importing cairn never
 * loads `@aws-sdk/client-s3` or `@azure/storage-blob`) under the one `ObjectStore`.
 */
import type { OpenOptions, StoreConfig } from "../registry.js";
import type { S3ObjectsOptions } from "../s3/config.js";
import type { CheckpointStore } from "../types.js";
import { parseAzureConfig, parseS3Config } from "./config.js";

/** Creates the `azure` store from a validated configuration. */
export async function openAzureStore(
  config: StoreConfig,
  options: OpenOptions = {},
): Promise<CheckpointStore> {
  const { singleWriter } = parseAzureConfig(config);
  const { singleWriter: _, ...clientOptions } = config;
  const readOnly = options.readOnly === true;
  const { createAzureObjects } = await import("../azure/objects.js");
  const client = await createAzureObjects({ ...clientOptions, readOnly });
  const { ObjectStore } = await import("../object/object-store.js");
  return new ObjectStore({ strategy: "azure", client, readOnly, singleWriter });
}

/** Creates the `s3` store from a validated configuration. */
export async function openS3Store(config: StoreConfig, options: OpenOptions = {}): Promise<CheckpointStore> {
  const { singleWriter } = parseS3Config(config);
  const { singleWriter: _, ...clientOptions } = config;
  const { createS3Objects } = await import("../s3/objects.js");
  const client = await createS3Objects(clientOptions as unknown as S3ObjectsOptions);
  const { ObjectStore } = await import("../object/object-store.js");
  return new ObjectStore({ strategy: "s3", client, readOnly: options.readOnly === true, singleWriter });
}
