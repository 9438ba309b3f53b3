/**
 * CairnSaver (issue 19) as a bench variant: `cairn-saver`, driven by the same PeerThread as the
 * LangGraph savers (it is a BaseCheckpointSaver), in the same rounds, on the same payloads.
 * Unlike LangGraph's savers it runs on every store cairn has (memory, file, sqlite, postgres,
 * redis), each through the store's measured configuration (`BenchStore.options`), so its rows
 * wait for the disk exactly as the `cairn` rows of that store do.
 *
 * Each use gets a folder of its own whose name is not a prefix of any other scenario folder
 * (`saver_<tag>`), so on the server stores its tables / keys are its own and its bytes are
 * measured apart from cairn's.
 */
import { join } from "node:path";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { CheckpointManager, type CheckpointManagerOptions } from "../../src/index.js";
import { CairnSaver, threadRunId } from "../../src/langgraph/index.js";
import { storeBytes } from "./bytes.js";
import type { BenchStore } from "./stores.js";

/** The variant name of CairnSaver's rows. */
export const SAVER_VARIANT = "cairn-saver";
/** On sqlite: CairnSaver on a store set to synchronous=normal, beside SqliteSaver as shipped. */
export const SAVER_NORMAL_VARIANT = "cairn-saver (synchronous=normal)";

/** The stores CairnSaver is measured on. */
export const SAVER_STORES = ["memory", "file", "sqlite", "postgres", "redis"] as const;

/** True when CairnSaver is measured on `store`. */
export const hasSaver = (store: string): boolean => (SAVER_STORES as readonly string[]).includes(store);

/** The folder CairnSaver uses for scenario `tag` under the child's folder. */
export const saverDir = (root: string, tag: string) => join(root, `saver_${tag}`);

/** An open CairnSaver and how to measure and release what it holds. */
export interface SaverHandle {
  saver: BaseCheckpointSaver<number | string>;
  /** Bytes of thread `threadId` measured as cairn's growth rows measure that store (after close where they do). */
  bytes(threadId: string): Promise<{ bytes: number; method: string }>;
  close(): Promise<void>;
}

/**
 * CairnSaver on `store` in `dir`. `mode`: `default` = the store's measured configuration;
 * `normal` = sqlite at synchronous=normal (SqliteSaver's durability as shipped); `fill` = the
 * store's fast filler (no wait for the disk), for setup only, as cairn's resume runs are filled.
 */
export async function openSaver(
  store: BenchStore,
  dir: string,
  mode: "default" | "normal" | "fill" = "default",
): Promise<SaverHandle> {
  if (mode === "fill") {
    const filler = await store.openFiller(dir);
    const saver = new CairnSaver({ manager: filler.manager });
    return {
      saver,
      bytes: () => Promise.reject(new Error("the fill saver does not measure bytes")),
      close: async () => {
        await saver.close();
        await filler.close();
      },
    };
  }
  const options: CheckpointManagerOptions =
    mode === "normal"
      ? { strategy: "sqlite", config: { dbPath: join(dir, "cairn.db"), synchronous: "normal" } }
      : store.options(dir);
  const saver = new CairnSaver(options);
  const close = () => saver.close();
  return {
    saver,
    bytes: async (threadId) => {
      // A manager of its own on the same configuration reads the store API (memory, redis) the
      // way cairn's rows are measured; on the others only the closed store's files / tables count.
      const manager = new CheckpointManager(options);
      const [measure, method] = await storeBytes(store, dir, manager, threadRunId(threadId)).finally(() =>
        manager.close(),
      );
      await close();
      return { bytes: await measure(), method };
    },
    close,
  };
}
