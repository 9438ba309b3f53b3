/** Opens a CairnSaver on a store URL, for the graph tests and their child processes. */
import { CairnSaver } from "../../src/langgraph/index.js";

/** A CairnSaver over `store` (it owns, and closes, its manager). */
export async function openCairnSaver(store: string): Promise<CairnSaver> {
  return new CairnSaver({ store });
}
