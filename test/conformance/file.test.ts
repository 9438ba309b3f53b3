import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeStoreConformance } from "cairn-pipelines/testing";
import { FileStore } from "../../src/stores/file/file-store.js";

describeStoreConformance("file", async () => {
  const basePath = await mkdtemp(join(tmpdir(), "cairn-file-"));
  const open = () => new FileStore({ basePath, fsync: true });
  return {
    store: open(),
    reopen: async () => open(),
    async corruptOutput(pipelineId, hash, body) {
      await writeFile(join(basePath, pipelineId, "outputs", `${hash}.json`), body);
    },
    async addGarbage(pipelineId) {
      const names = await readdir(join(basePath, pipelineId));
      const next = names.filter((n) => /^\d{10}-/.test(n)).length + 1;
      await writeFile(
        join(basePath, pipelineId, `${String(next).padStart(10, "0")}-garbage.json`),
        "{not json",
      );
    },
    checkpointLocation: (pipelineId, checkpointId, sequence) =>
      join(basePath, pipelineId, `${String(sequence).padStart(10, "0")}-${checkpointId}.json`),
    async cleanup() {
      await rm(basePath, { recursive: true, force: true });
    },
  };
});
