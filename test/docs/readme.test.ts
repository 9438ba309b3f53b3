/**
 * The README's code runs as written: every TypeScript block is type-checked against the sources
 * and run (with tsx, or with vitest when it is a test file), each in its own temporary folder, so
 * the docs cannot drift from the API. Imports of the package (`cairn-pipelines`, or the old name
 * `cairn`, and `/testing`) are pointed at `src/`. A block that is deliberately not a whole
 * program says so with `<!-- fragment: why -->` just above it; it is still type-checked.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CodeBlock, codeBlocks, rewriteImports } from "../support/markdown.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");
const README = await readFile(join(ROOT, "README.md"), "utf8");
const CODE_LANGS = new Set(["ts", "typescript", "js", "javascript"]);
const blocks = codeBlocks(README).filter((b) => CODE_LANGS.has(b.lang));

const fragmentReason = (b: CodeBlock) =>
  b.markers.map((m) => /^fragment\b:?\s*(.*)$/.exec(m)).find((m) => m !== null)?.[1];
const isFragment = (b: CodeBlock) => fragmentReason(b) !== undefined;
const isVitest = (b: CodeBlock) => b.markers.includes("vitest");
const folderOf = (b: CodeBlock) => `line-${b.line}`;
const fileOf = (b: CodeBlock) => {
  const ext = b.lang.startsWith("j") ? "js" : "ts";
  return isVitest(b) ? `example.test.${ext}` : `example.${ext}`;
};

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a child to its end; never throws, so a failure is reported with its output. */
function run(command: string, args: string[], cwd: string): Promise<Outcome> {
  // The examples pick their own stores: nothing from this test process's environment leaks in.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(VITEST|CAIRN_STORE$|NODE_OPTIONS$)/.test(key)),
  );
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const report = (o: Outcome) => `exit ${o.code}\n--- stdout\n${o.stdout}\n--- stderr\n${o.stderr}`;

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-readme-"));
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module", private: true }));
  // Examples that use an optional peer (the OpenTelemetry SDK) find it as an installed package.
  await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  const targets = {
    root: join(ROOT, "src/index.ts"),
    testing: join(ROOT, "src/testing/index.ts"),
    workers: join(ROOT, "src/workers/index.ts"),
    langgraph: join(ROOT, "src/langgraph/index.ts"),
  };
  for (const block of blocks) {
    await mkdir(join(dir, folderOf(block)));
    await writeFile(join(dir, folderOf(block), fileOf(block)), rewriteImports(block.code, targets));
  }
  // The repo's strict settings, with the examples' rewritten imports of `.ts` sources allowed.
  const tsconfig = {
    extends: join(ROOT, "tsconfig.json"),
    compilerOptions: {
      noEmit: true,
      allowImportingTsExtensions: true,
      rootDir: "/",
      typeRoots: [join(ROOT, "node_modules/@types")],
      paths: {},
    },
    include: [],
    files: blocks.map((b) => `${folderOf(b)}/${fileOf(b)}`),
  };
  await writeFile(join(dir, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("finds the README's code examples, and every fragment says why it is one", () => {
  expect(blocks.length).toBeGreaterThanOrEqual(4);
  for (const block of blocks.filter(isFragment)) {
    expect(fragmentReason(block), `README.md:${block.line}: a fragment needs a reason`).not.toBe("");
  }
  // Fragments are the exception: the API examples themselves must run. The workers' three need
  // a queue server and a second process (the fleet and CLI tests drive the same code).
  expect(blocks.filter(isFragment).length).toBeLessThanOrEqual(4);
});

it("type-checks every example against the sources", { timeout: 300_000 }, async () => {
  const outcome = await run(
    process.execPath,
    [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", dir],
    dir,
  );
  expect(outcome.code, report(outcome)).toBe(0);
});

describe.each(blocks.filter((b) => !isFragment(b)).map((b) => ({ at: `README.md:${b.line}`, block: b })))(
  "the example at $at",
  ({ block }) => {
    const cwd = () => join(dir, folderOf(block));
    if (isVitest(block)) {
      it("passes as a vitest test file", { timeout: 180_000 }, async () => {
        const out = join(cwd(), "vitest.json");
        const outcome = await run(
          join(BIN, "vitest"),
          ["run", "--root", cwd(), "--reporter=json", `--outputFile=${out}`],
          cwd(),
        );
        expect(outcome.code, report(outcome)).toBe(0);
        const result = JSON.parse(await readFile(out, "utf8")) as {
          numPassedTests: number;
          numFailedTests: number;
        };
        expect(result.numFailedTests).toBe(0);
        expect(result.numPassedTests).toBeGreaterThan(0);
      });
    } else {
      it("runs to the end with exit code 0 and nothing on stderr", { timeout: 60_000 }, async () => {
        const outcome = await run(join(BIN, "tsx"), [fileOf(block)], cwd());
        expect(outcome.code, report(outcome)).toBe(0);
        expect(outcome.stderr, report(outcome)).toBe("");
      });
    }
  },
);
