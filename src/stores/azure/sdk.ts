/**
 * Loading `@azure/storage-blob` (lazily: an optional peer dependency) and building the two
 * container clients the adapter uses:
 * - `main`, with the SDK's retry policy (throttling, 5xx, resets) for reads, unconditional
 *   writes, deletes and listings, where a retry cannot change the meaning of the answer;
 * - `single`, with retries off, for conditional puts: a retried create-only put whose first try
 *   was applied would answer 409/412 and be mistaken for a lost race, so the adapter retries those
 *   itself and settles every unknown outcome by reading the blob back.
 * Neither SDK timeout bounds a request on the client (`tryTimeoutInMs` is only the server-side
 * `timeout` parameter), so every call also carries an `AbortSignal` for `requestTimeoutMs`.
 */
import type { AnonymousCredential, ContainerClient, StoragePipelineOptions } from "@azure/storage-blob";
import { loadDriver } from "../driver.js";
import type { AzureObjectsSettings } from "./config.js";

/** What the adapter takes from the SDK module. */
export interface AzureSdk {
  BlobServiceClient: typeof import("@azure/storage-blob").BlobServiceClient;
  ContainerClient: typeof import("@azure/storage-blob").ContainerClient;
  AnonymousCredential: typeof import("@azure/storage-blob").AnonymousCredential;
  newPipeline: typeof import("@azure/storage-blob").newPipeline;
}

/**
 * Imports `@azure/storage-blob`; `MissingDriverError("azure", "@azure/storage-blob")` when it is
 * not installed. `load` is replaceable for tests.
 */
export function loadAzureSdk(
  load: () => Promise<unknown> = () => import("@azure/storage-blob"),
): Promise<AzureSdk> {
  return loadDriver("azure", "@azure/storage-blob", load, (m) =>
    typeof m.BlobServiceClient === "function" &&
    typeof m.ContainerClient === "function" &&
    typeof m.newPipeline === "function"
      ? (m as unknown as AzureSdk)
      : undefined,
  );
}

/** The clients of one container. */
export interface ContainerClients {
  main: ContainerClient;
  single: ContainerClient;
  /** The container's URL without a SAS, for messages. */
  url: string;
}

/** Pipeline options: short retry delays so the SDK's retries fit in `requestTimeoutMs`. */
function pipelineOptions(timeoutMs: number, retries: boolean): StoragePipelineOptions {
  return {
    retryOptions: {
      maxTries: retries ? 4 : 1,
      // The server-side timeout, whole seconds (the client-side one is the AbortSignal).
      tryTimeoutInMs: Math.max(1000, timeoutMs),
      retryDelayInMs: 100,
      maxRetryDelayInMs: Math.max(100, Math.min(2000, Math.floor(timeoutMs / 4))),
    },
    userAgentOptions: { userAgentPrefix: "cairn" },
  };
}

/** Builds the two clients from validated settings. */
export function containerClients(sdk: AzureSdk, settings: AzureObjectsSettings): ContainerClients {
  const { connection, container, requestTimeoutMs } = settings;
  const retrying = pipelineOptions(requestTimeoutMs, true);
  const once = pipelineOptions(requestTimeoutMs, false);
  let main: ContainerClient;
  let single: ContainerClient;
  if (connection.kind === "connectionString") {
    const of = (options: StoragePipelineOptions) =>
      sdk.BlobServiceClient.fromConnectionString(connection.connectionString, options).getContainerClient(
        container,
      );
    main = of(retrying);
    single = of(once);
  } else if (connection.kind === "accountUrl") {
    const credential = (connection.credential ??
      new sdk.AnonymousCredential()) as unknown as AnonymousCredential;
    const of = (options: StoragePipelineOptions) =>
      new sdk.BlobServiceClient(connection.accountUrl, credential, options).getContainerClient(container);
    main = of(retrying);
    single = of(once);
  } else {
    // The caller's client serves everything but conditional puts; those go through a sibling
    // with the same URL and credential and no SDK retries (the caller's proxy or HTTP client
    // settings do not carry over to it).
    main = connection.containerClient as unknown as ContainerClient;
    single = new sdk.ContainerClient(main.url, sdk.newPipeline(main.credential, once));
  }
  const url = main.url.split("?")[0] ?? main.url;
  return { main, single, url };
}

/** One operation's time budget: an `AbortSignal` that fires after `ms`. */
export class Deadline {
  readonly signal: AbortSignal;
  private readonly end: number;

  constructor(readonly ms: number) {
    this.signal = AbortSignal.timeout(ms);
    this.end = performance.now() + ms;
  }

  /** Milliseconds left. */
  remaining(): number {
    return Math.max(0, this.end - performance.now());
  }
}
