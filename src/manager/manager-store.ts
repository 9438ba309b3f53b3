/**
 * The store of a {@link CheckpointManager}: resolved at construction (so a bad strategy or option
 * fails there, not at the first write), opened with its at-rest layers on first use, closed once.
 */
import { ClosedError } from "../core/errors.js";
import { openStore, type ResolvedStore, resolveStore, type StoreSpec } from "../stores/registry.js";
import type { CheckpointStore } from "../stores/types.js";
import { AtRestStore } from "../transforms/at-rest-store.js";
import { loadCodec, type ResolvedCompression, resolveCompression } from "../transforms/compression.js";
import { createKeyRing, type KeyRing } from "../transforms/keys.js";
import { byteLimit, DEFAULT_MAX_RECORD_BYTES } from "./limits.js";
import type { CheckpointManagerOptions } from "./manager-options.js";

/** A manager's store, opened lazily behind its compression and encryption layers. */
export class ManagerStore {
  private readonly spec: StoreSpec | ResolvedStore;
  private storePromise: Promise<AtRestStore> | undefined;
  private readonly compression: ResolvedCompression | undefined;
  private readonly ring: KeyRing | undefined;
  /** Largest checkpoint a load reads (`maxRecordBytes`). */
  readonly maxRecordBytes: number;
  private readonly readOnly: boolean;
  private closed = false;

  constructor(options: CheckpointManagerOptions) {
    this.spec =
      options.store !== undefined
        ? typeof options.store === "string"
          ? resolveStore(options.store)
          : options.store
        : resolveStore(options.strategy, options.config);
    this.maxRecordBytes = byteLimit("maxRecordBytes", options.maxRecordBytes, DEFAULT_MAX_RECORD_BYTES);
    this.readOnly = options.readOnly === true;
    this.compression = resolveCompression(options.compression);
    this.ring = options.encryption === undefined ? undefined : createKeyRing(options.encryption);
  }

  /** The store, opened and set up on first use; `ClosedError` once closing began. */
  async get(): Promise<AtRestStore> {
    if (this.closed) throw new ClosedError("This CheckpointManager");
    if (!this.storePromise) {
      this.storePromise = this.openLayered().catch((error: unknown) => {
        this.storePromise = undefined;
        throw error;
      });
    }
    const store = await this.storePromise;
    await store.setup();
    return store;
  }

  private async openLayered(): Promise<AtRestStore> {
    const c = this.compression;
    const codec = c && (await loadCodec(c.algorithm, c.level, c.minBytes));
    const store = await openStore(this.spec, { readOnly: this.readOnly });
    return new AtRestStore(store, { codec, ring: this.ring, maxBytes: this.maxRecordBytes });
  }

  /** The strategy name of the store (`file`, `sqlite`...). */
  get strategy(): string {
    const spec = this.spec;
    if (typeof spec === "string") return spec;
    if ("definition" in spec) return spec.definition.strategy;
    return (spec as CheckpointStore).strategy ?? "custom";
  }

  /** Refuses further use; false when closing had already begun. */
  beginClose(): boolean {
    if (this.closed) return false;
    this.closed = true;
    return true;
  }

  /** Closes the store if it was opened. */
  async close(): Promise<void> {
    if (this.storePromise) {
      const store = await this.storePromise.catch(() => undefined);
      this.storePromise = undefined;
      await store?.close();
    }
  }
}
