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

/** The screen of a minimal terminal: text, `\r`, `\n`, cursor up (`ESC[nA`) and erase (`ESC[0J`, `ESC[K`). */
function terminal() {
  const rows: string[][] = [[]];
  let row = 0;
  let col = 0;
  const feed = (text: string) => {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i] as string;
      if (ch === "\x1b") {
        // After ESC: `[`, an optional count, and the command letter.
        const m = /^\[(\d*)([AJK])/.exec(text.slice(i + 1)) as RegExpExecArray;
        const n = Number(m[1] || 1);
        if (m[2] === "A") row = Math.max(0, row - n);
        else if (m[2] === "J") rows.splice(row + 1, rows.length, ...[]);
        if (m[2] !== "A") rows[row] = (rows[row] ?? []).slice(0, col);
        i += m[0].length;
      } else if (ch === "\r") col = 0;
      else if (ch === "\n") {
        row++;
        col = 0;
        rows[row] ??= [];
      } else {
        rows[row] ??= [];
        (rows[row] as string[])[col++] = ch;
      }
    }
  };
  const write = (text: string) => {
    feed(text);
    return true;
  };
  const out = { isTTY: true, write } as unknown as NodeJS.WriteStream;
  return { out, feed, lines: () => rows.map((r) => r.join("")) };
}

it("starts a note at the left edge after the terminal echoed ^C over the live block", async () => {
  const screen = terminal();
  const view = new ProgressView(screen.out);
  const pipeline: Pipeline = new Pipeline({
    name: "interrupted",
    onEvent: (e: PipelineEvent) => view.update(e, pipeline),
    steps: [{ name: "only", agent: () => 1 }],
  });
  await pipeline.execute();
  screen.feed("^C"); // what the terminal itself echoes when Ctrl+C is pressed
  view.note("SIGINT: stopping after the current stage");
  const lines = screen.lines();
  expect(lines).toContain("SIGINT: stopping after the current stage");
  expect(lines.join("\n")).not.toMatch(/\S+SIGINT/);
});

/** a, then b and c side by side, then d: the view fed by a real DAG execution. */
async function runDiamond(isTTY: boolean) {
  const s = stream(isTTY);
  const view = new ProgressView(s.out);
  const wait = () => new Promise((resolve) => setTimeout(resolve, 20));
  const pipeline: Pipeline = new Pipeline({
    name: "diamond",
    onEvent: (e: PipelineEvent) => view.update(e, pipeline),
    steps: [
      { name: "a", agent: () => 1 },
      { name: "b", agent: async () => wait(), dependsOn: ["a"] },
      { name: "c", agent: async () => wait(), dependsOn: ["a"] },
      { name: "d", agent: () => 4, dependsOn: ["b", "c"] },
    ],
  });
  await pipeline.execute();
  view.finish();
  return s.text();
}

it("names the stages in flight when two run at once", async () => {
  const plain = await runDiamond(false);
  expect(plain).toMatch(/▶ c started {2}\[2 running: b, c\]\n/);
  const live = await runDiamond(true);
  expect(live).toMatch(/1\/4 stages done, 2 running: b, c\n/);
  expect(live).toMatch(/▶ c +running +← a\n/);
  expect(live).toMatch(/✓ d +completed +← b, c/);
});
