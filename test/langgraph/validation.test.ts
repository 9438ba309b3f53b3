/**
 * LangGraph's own checkpoint validation kit (`@langchain/langgraph-checkpoint-validation`, used
 * as a library: its CLI is broken) against `CairnSaver` on every store, with the opt-in
 * `getDeltaChannelHistory` tests. The kit calls vitest's APIs as globals.
 */
import "../support/vitest-globals.js";
import { deltaChannelHistoryTests, specTest } from "@langchain/langgraph-checkpoint-validation";
import { describe } from "vitest";
import { CairnSaver } from "../../src/langgraph/index.js";
import { kitInitializer, kitStores } from "../support/langgraph-kit.js";

for (const store of kitStores("lgkit")) {
  describe.skipIf(!store.up)(`validation kit on ${store.name}`, () => {
    // Not "MemorySaver" nor the SQLite saver's name: the kit skips a test for those.
    const initializer = kitInitializer(`CairnSaver (${store.name})`, store, (o) => new CairnSaver(o));
    specTest(initializer);
    deltaChannelHistoryTests(initializer);
  });
}
