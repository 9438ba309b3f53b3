/**
 * Peak memory of a run export and import: a run of 50 checkpoints with 1 MB outputs each is
 * exported and imported in child processes, each reporting its peak RSS (`process.resourceUsage`).
 * Run: `node --import tsx bench/export-memory.ts [checkpoints] [MB per output]`.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointManager } from "../src/index.js";

// The parent runs with `[checkpoints] [MB]`; each child with `--child <phase> <dir> <checkpoints> <MB>`.
const isChild = process.argv[2] === "--child";
const [phase, dir, countArg, mbArg] = isChild
  ? process.argv.slice(3)
  : [undefined, undefined, ...process.argv.slice(2)];
const count = Number(countArg ?? 50);
const mb = Number(mbArg ?? 1);
const peakMb = () => (process.resourceUsage().maxRSS / 1024).toFixed(0);

async function child(): Promise<void> {
  const base = dir as string;
  if (phase === "write") {
    const m = new CheckpointManager({ strategy: "file", config: { basePath: join(base, "files") } });
    for (let i = 0; i < count; i++) {
      const output = `${i}:`.padEnd(mb * 1024 * 1024, String.fromCharCode(97 + (i % 26)));
      await m.createCheckpoint({
        pipelineId: "big",
        stageName: `s${i}`,
        stageIndex: i,
        agentOutputs: { [`s${i}`]: output },
      });
    }
    await m.close();
  } else if (phase === "export") {
    const m = new CheckpointManager({ strategy: "file", config: { basePath: join(base, "files") } });
    await m.exportPipeline("big", join(base, "run.json"));
    await m.close();
  } else if (phase === "import") {
    const m = new CheckpointManager({ strategy: "file", config: { basePath: join(base, "imported") } });
    await m.importPipeline(join(base, "run.json"));
    await m.close();
  }
  console.log(peakMb());
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), "cairn-export-memory-"));
  const run = (p: string) =>
    execFileSync(
      process.execPath,
      ["--import", "tsx", import.meta.filename, "--child", p, base, String(count), String(mb)],
      {
        encoding: "utf8",
      },
    ).trim();
  try {
    run("write");
    const exported = run("export");
    const { size } = await stat(join(base, "run.json"));
    const imported = run("import");
    console.log(
      `${count} checkpoints × ${mb} MB: export file ${(size / 1024 ** 2).toFixed(0)} MiB; ` +
        `peak RSS export ${exported} MiB, import ${imported} MiB`,
    );
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

if (isChild) await child();
else await main();
