/** Opens a CairnSaver on a store URL (TEMP: through LG_SAVER_MODULE until the saver is on main). */
import type { BaseCheckpointSaver } from "@langchain/langgraph";
import type { CheckpointManager } from "../../src/index.js";

/** The saver and its manager. */
export type OpenSaver = BaseCheckpointSaver & { manager: CheckpointManager; close(): Promise<void> };

/** A CairnSaver over `store`. */
export async function openCairnSaver(store: string): Promise<OpenSaver> {
  const modulePath = process.env.LG_SAVER_MODULE ?? "../../src/langgraph/index.js";
  const { CairnSaver } = (await import(modulePath)) as {
    CairnSaver: new (o: { store: string }) => OpenSaver;
  };
  return new CairnSaver({ store });
}
