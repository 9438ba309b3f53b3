/**
 * LangGraph's own checkpoint validation kit (`@langchain/langgraph-checkpoint-validation`, used
 * as a library: its CLI is broken) against `CairnSaver` on every store, with the opt-in
 * `getDeltaChannelHistory` tests. The kit calls vitest's APIs as globals.
 */
import "../support/vitest-globals.js";
import { MemorySaver } from "@langchain/langgraph-checkpoint";
import { deltaChannelHistoryTests, specTest } from "@langchain/langgraph-checkpoint-validation";
import { describe } from "vitest";
import { kitInitializer, kitStores } from "../support/langgraph-kit.js";

for (const store of kitStores("lgkit")) {
  describe.skipIf(!store.up)(`validation kit on ${store.name}`, () => {
    // TEMPORARY reference run until CairnSaver lands: MemorySaver under another name.
    const initializer = kitInitializer(`RefMemorySaver (${store.name})`, store, () => new MemorySaver());
    specTest(initializer);
    deltaChannelHistoryTests(initializer);
  });
}
