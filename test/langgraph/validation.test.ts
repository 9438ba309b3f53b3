/**
 * LangGraph's own checkpoint validation kit (`@langchain/langgraph-checkpoint-validation`, used
 * as a library: its CLI is broken) against `CairnSaver` on the local stores, with the opt-in
 * `getDeltaChannelHistory` tests: 726 kit tests per store. s3 and azure are in
 * validation-objects.test.ts, so the two files run in parallel and this one starts no server.
 */
import { describeKit, localKitStores } from "../support/langgraph-kit.js";

for (const store of localKitStores("lgkit")) describeKit(store);
