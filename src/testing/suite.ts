/**
 * The conformance suite every store runs: the raw store contract (`store-contract.ts`), leases,
 * corrupt entries, the runs-by-name index, whole-run imports, run key records, the change feed and
 * meta values, and the CheckpointManager's guarantees on top of
 * the store (`manager-behaviour.ts`).
 *
 * A store's test file calls `describeStoreConformance(name, create)`; `create` runs before each
 * test and gives a fresh store, or a harness: the store plus hooks that let the suite tamper
 * with stored bytes. A test that needs a hook the harness lacks is skipped with the reason.
 */
import { afterEach, beforeEach, describe } from "vitest";
import type { CheckpointRecord, CheckpointStore } from "../index.js";
import { GuardedStore } from "../stores/guarded-store.js";
import { managerTests } from "./manager-behaviour.js";
import { storeContractTests } from "./store-contract.js";
import { corruptEntryTests } from "./store-corrupt-entries.js";
import { feedTests } from "./store-feed.js";
import { runHeadTests } from "./store-heads.js";
import { importRunTests } from "./store-import.js";
import { leaseTests } from "./store-leases.js";
import { modelTests } from "./store-model.js";
import { runKeyTests } from "./store-run-keys.js";
import { runsIndexTests } from "./store-runs.js";

/** What a store provides to the suite for one test. */
export interface HarnessParts {
  /** A fresh, empty store. */
  store: CheckpointStore;
  /** Opens a second store on the same location (persistent stores only). */
  reopen?: () => Promise<CheckpointStore>;
  /** Overwrites the stored bytes of an output behind the store's back. */
  corruptOutput?(pipelineId: string, hash: string, body: string): Promise<void>;
  /** Rewrites a stored checkpoint behind the store's back; the default deletes and re-puts it. */
  tamperCheckpoint?(checkpointId: string, edit: (record: CheckpointRecord) => void): Promise<void>;
  /** Puts something unparseable among a run's checkpoints, where the store can hold one. */
  addGarbage?(pipelineId: string): Promise<void>;
  /** Where the store keeps a checkpoint, as its corrupt entries name it (stores that locate by it). */
  checkpointLocation?(pipelineId: string, checkpointId: string, sequence: number): string;
  /** Removes a checkpoint from its run's separate index only (stores that have one). */
  dropIndexEntry?(pipelineId: string, checkpointId: string): Promise<void>;
  /** Removes everything the test created; by default each run the test named is deleted. */
  cleanup?(): Promise<void>;
}

/** What `create` may return: a bare store, or a harness with hooks. */
export type HarnessFactory = () => CheckpointStore | HarnessParts | Promise<CheckpointStore | HarnessParts>;

const isHarness = (value: CheckpointStore | HarnessParts): value is HarnessParts =>
  "store" in value && typeof (value as HarnessParts).store === "object";

/** The harness as tests see it. */
export interface StoreHarness extends HarnessParts {
  /** A run id unique to this test. */
  runId(name: string): string;
  tamperCheckpoint(checkpointId: string, edit: (record: CheckpointRecord) => void): Promise<void>;
}

let sequence = 0;

/**
 * Registers the whole store conformance suite for one store: `create` gives a fresh, isolated
 * store (or a harness around one) before each test.
 */
export function describeStoreConformance(name: string, create: HarnessFactory): void {
  describe(`${name} store conformance`, () => {
    let current: StoreHarness | undefined;
    const opened: CheckpointStore[] = [];
    const runs = new Set<string>();

    beforeEach(async () => {
      const made = await create();
      const parts: HarnessParts = isHarness(made) ? made : { store: made };
      const store = new GuardedStore(parts.store);
      await store.setup();
      const tag = `t${process.pid}x${++sequence}`;
      current = {
        ...parts,
        store,
        reopen: parts.reopen
          ? async () => {
              const again = new GuardedStore(await (parts.reopen as () => Promise<CheckpointStore>)());
              await again.setup();
              opened.push(again);
              return again;
            }
          : undefined,
        runId: (runName: string) => {
          const id = `${runName}-${tag}`;
          runs.add(id);
          return id;
        },
        tamperCheckpoint:
          parts.tamperCheckpoint ??
          (async (checkpointId, edit) => {
            const record = await store.getCheckpoint(checkpointId);
            if (!record) throw new Error(`no checkpoint ${checkpointId} to tamper with`);
            edit(record);
            await store.deleteCheckpoints(record.metadata.pipeline_id, [checkpointId]);
            await store.putCheckpoint(record, []);
          }),
      };
    });

    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
      if (current) {
        if (!current.cleanup) for (const id of runs) await current.store.deleteRun(id);
        await current.store.close();
        await current.cleanup?.();
      }
      runs.clear();
      current = undefined;
    });

    const harness = (): StoreHarness => {
      if (!current) throw new Error("harness used outside a test");
      return current;
    };
    storeContractTests(harness);
    leaseTests(harness);
    corruptEntryTests(harness);
    runsIndexTests(harness);
    modelTests(harness);
    importRunTests(harness);
    runHeadTests(harness);
    runKeyTests(harness);
    feedTests(harness);
    managerTests(harness);
  });
}
