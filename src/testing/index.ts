/**
 * `cairn-pipelines/testing`: the store conformance kit. A store, built in or third-party, proves it keeps
 * the store contract by passing this suite under vitest:
 *
 * ```ts
 * import { describeStoreConformance } from "cairn-pipelines/testing";
 * describeStoreConformance("my-store", () => new MyStore({ ... }));
 * ```
 *
 * Importing this entry point loads vitest (an optional peer dependency); the package root never does.
 */
export { makeRecord } from "./store-contract.js";
export {
  describeStoreConformance,
  type HarnessFactory,
  type HarnessParts,
  type StoreHarness,
} from "./suite.js";
