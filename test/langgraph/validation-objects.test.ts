/**
 * LangGraph's checkpoint validation kit against `CairnSaver` on s3 (Ceph RGW) and azure
 * (azurite); see validation.test.ts.
 */
import { describeKit } from "../support/langgraph-kit.js";
import { objectKitStores } from "../support/langgraph-kit-objects.js";

for (const store of objectKitStores("lgkit-obj")) describeKit(store);
