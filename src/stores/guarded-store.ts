import { CairnError, ClosedError, StoreOperationError } from "../core/errors.js";
import type { CheckpointStore, MigrationStatus } from "./types.js";

type StoreMethod = Exclude<
  keyof CheckpointStore,
  "strategy" | "location" | "persistent" | "setup" | "close" | "migrationStatus"
>;

const METHODS: readonly StoreMethod[] = [
  "putCheckpoint",
  "acquireLease",
  "renewLease",
  "releaseLease",
  "getCheckpoint",
  "getLatestCheckpoint",
  "listCheckpoints",
  "listPipelineIds",
  "updateCheckpoint",
  "deleteCheckpoints",
  "getOutputs",
  "listOutputHashes",
  "deleteOutputs",
  "deleteRun",
  "readCorruptEntry",
  "removeCorruptEntry",
];

/**
 * Wraps a store so that every store behaves the same at the edges: `setup()` runs once before
 * first use (concurrent callers share it, a failed setup is retried next time), calls after
 * `close()` fail with `CAIRN_CLOSED`, and an error that is not already a cairn error becomes a
 * `StoreOperationError` naming the operation, with the original as `cause`. Nothing is
 * swallowed.
 */
export class GuardedStore implements CheckpointStore {
  readonly strategy: string;
  readonly location: string;
  readonly persistent: boolean;
  readonly checksTip: boolean;
  private ready: Promise<void> | undefined;
  private closed = false;

  constructor(readonly inner: CheckpointStore) {
    this.strategy = inner.strategy;
    this.location = inner.location;
    this.persistent = inner.persistent;
    this.checksTip = inner.checksTip === true;
    // An optional method is wrapped only when the inner store has it, so callers can test for it.
    const names: readonly string[] =
      typeof inner.rebuildIndexes === "function" ? [...METHODS, "rebuildIndexes"] : METHODS;
    for (const name of names) {
      const method = (inner as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[name] as (
        ...args: unknown[]
      ) => Promise<unknown>;
      (this as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
        await this.setup();
        try {
          return await method.apply(inner, args);
        } catch (error) {
          throw this.wrap(name, error);
        }
      };
    }
    // Optional, so only present when the inner store has it: callers test for it.
    if (inner.migrationStatus) {
      const status = inner.migrationStatus.bind(inner);
      this.migrationStatus = async () => {
        await this.setup();
        try {
          return await status();
        } catch (error) {
          throw this.wrap("migrationStatus", error);
        }
      };
    }
  }

  private wrap(operation: string, error: unknown): CairnError {
    return error instanceof CairnError
      ? error
      : new StoreOperationError(this.strategy, operation, { cause: error });
  }

  /** Runs the inner store's setup once; concurrent callers wait for the same attempt. */
  setup(): Promise<void> {
    if (this.closed) return Promise.reject(new ClosedError(`The ${this.strategy} store`));
    if (!this.ready) {
      this.ready = this.inner.setup().catch((error: unknown) => {
        this.ready = undefined;
        throw this.wrap("setup", error);
      });
    }
    return this.ready;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.inner.close();
  }

  // Replaced per instance in the constructor; declared for the type checker.
  declare putCheckpoint: CheckpointStore["putCheckpoint"];
  declare acquireLease: CheckpointStore["acquireLease"];
  declare renewLease: CheckpointStore["renewLease"];
  declare releaseLease: CheckpointStore["releaseLease"];
  declare getCheckpoint: CheckpointStore["getCheckpoint"];
  declare getLatestCheckpoint: CheckpointStore["getLatestCheckpoint"];
  declare listCheckpoints: CheckpointStore["listCheckpoints"];
  declare listPipelineIds: CheckpointStore["listPipelineIds"];
  declare updateCheckpoint: CheckpointStore["updateCheckpoint"];
  declare deleteCheckpoints: CheckpointStore["deleteCheckpoints"];
  declare getOutputs: CheckpointStore["getOutputs"];
  declare listOutputHashes: CheckpointStore["listOutputHashes"];
  declare deleteOutputs: CheckpointStore["deleteOutputs"];
  declare deleteRun: CheckpointStore["deleteRun"];
  declare readCorruptEntry: CheckpointStore["readCorruptEntry"];
  declare removeCorruptEntry: CheckpointStore["removeCorruptEntry"];
  declare rebuildIndexes?: CheckpointStore["rebuildIndexes"];
  declare migrationStatus?: () => Promise<MigrationStatus>;
}
