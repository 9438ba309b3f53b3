/**
 * The object stores on servers for LangGraph's validation kit: s3 on Ceph RGW and azure on
 * azurite, a fresh prefix per saver in the importing file's bucket and container, which
 * object-servers.ts removes (with every prefix in them) after the file's tests.
 */
import type { KitStore } from "./langgraph-kit.js";
import { azureUp, azureUrl, objectPrefix, s3Up, s3Url } from "./object-servers.js";

/** s3 and azure, each skipped when its server is down. */
export function objectKitStores(tag: string): KitStore[] {
  return [
    { name: "s3", up: s3Up, fresh: () => ({ store: s3Url(objectPrefix(tag)) }) },
    { name: "azure", up: azureUp, fresh: () => ({ store: azureUrl(objectPrefix(tag)) }) },
  ];
}
