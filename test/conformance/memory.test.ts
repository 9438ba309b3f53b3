import { describeStoreConformance } from "cairn-pipelines/testing";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

describeStoreConformance("memory", async () => {
  const store = new MemoryStore();
  return {
    store,
    async corruptOutput(pipelineId, hash, body) {
      // Reach behind the API, as a bit flip in memory would.
      const runs = (store as unknown as { runs: Map<string, { outputs: Map<string, string> }> }).runs;
      runs.get(pipelineId)?.outputs.set(hash, body);
    },
    async cleanup() {},
  };
});
