/** Test helpers for reaching into the file store's layout behind its back. */
import { readdir } from "node:fs/promises";
import { join } from "node:path";

/** The file of a checkpoint: `<basePath>/<run>/<10-digit sequence>-<id>.json`. */
export async function checkpointFile(
  basePath: string,
  pipelineId: string,
  checkpointId: string,
): Promise<string> {
  const name = (await readdir(join(basePath, pipelineId))).find((n) => n.endsWith(`-${checkpointId}.json`));
  if (!name) throw new Error(`no file for ${checkpointId}`);
  return join(basePath, pipelineId, name);
}
