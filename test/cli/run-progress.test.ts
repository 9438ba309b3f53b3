import { Writable } from "node:stream";
import { expect, it } from "vitest";
import { ProgressView } from "../../src/cli/commands/run-progress.js";
import { Pipeline, type PipelineEvent } from "../../src/index.js";

function stream(isTTY: boolean) {
  let text = "";
  const out = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  (out as { isTTY?: boolean }).isTTY = isTTY;
  return { out, text: () => text };
}

async function run(isTTY: boolean) {
  const s = stream(isTTY);
  const view = new ProgressView(s.out);
  const pipeline: Pipeline = new Pipeline({
    name: "progress",
    onEvent: (e: PipelineEvent) => view.update(e, pipeline),
    steps: [
      { name: "first", agent: () => 1 },
      { name: "second", agent: () => 2 },
    ],
  });
  await pipeline.execute();
  view.finish();
  return s.text();
}

it("redraws the stage block in place on a terminal", async () => {
  const text = await run(true);
  expect(text).toContain("\x1b[3A\x1b[0J");
  expect(text).toMatch(/2\/2 stages done\n {2}✓ first +completed .*\n {2}✓ second +completed/);
});

it("writes one plain line per event elsewhere", async () => {
  const text = await run(false);
  expect(text).not.toContain("\x1b[");
  expect(text).toMatch(/▶ first started/);
  expect(text).toMatch(/✓ second completed in \d+ ms/);
  expect(text).toMatch(/run progress_\S+ completed/);
});
