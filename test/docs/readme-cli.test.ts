/**
 * The command lines the docs show exist: every `cairn <command>` in the README and CONTRIBUTING
 * (shell blocks, inline code, the command reference's headings) is a command of the built CLI,
 * and each flag given to it is one of that command's options by its own `--help`; a flag named
 * alone in the prose belongs to some command; every `npm run <script>` is a script of
 * package.json; the pipeline-file example runs with the command its first line gives.
 */
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runCairn } from "../support/cli.js";
import { codeBlocks, commandMentions } from "../support/markdown.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DOCS = ["README.md", "CONTRIBUTING.md"];
const texts = DOCS.map((doc) => ({ doc, text: readFileSync(join(ROOT, doc), "utf8") }));
const mentions = texts.flatMap(({ doc, text }) => commandMentions(text).map((m) => ({ doc, ...m })));

let cwd: string;
beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), "cairn-docs-cli-"));
});
afterAll(async () => {
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

/** The long options a `--help` text lists in its Options section. */
function optionsOf(help: string): Set<string> {
  const section = help.slice(help.indexOf("\nOptions:\n"));
  return new Set([...section.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1] as string));
}

const helps = new Map<string, Promise<Set<string>>>();
/** The options of one command (its `--help` is run once per test file). */
function helpOf(command: string): Promise<Set<string>> {
  let help = helps.get(command);
  if (!help) {
    help = runCairn([command, "--help"], { cwd }).then((result) => {
      expect(result.code, `cairn ${command} --help: ${result.stderr}`).toBe(0);
      return optionsOf(result.stdout);
    });
    helps.set(command, help);
  }
  return help;
}

it("documents only commands and flags the CLI has", { timeout: 120_000 }, async () => {
  expect(mentions.length).toBeGreaterThan(30);
  const commands = [...new Set(mentions.map((m) => m.command))];
  const options = new Map<string, Set<string>>();
  for (const [i, flags] of (await Promise.all(commands.map(helpOf))).entries())
    options.set(commands[i] as string, flags);
  const unknown = mentions.flatMap((m) =>
    m.flags
      .filter((flag) => !options.get(m.command)?.has(flag))
      .map((flag) => `${m.doc}:${m.line}: cairn ${m.command} has no ${flag} (${m.text})`),
  );
  expect(unknown).toEqual([]);
  // The reference covers every command the CLI has.
  const root = await runCairn(["--help"], { cwd });
  const section = root.stdout.slice(root.stdout.indexOf("\nCommands:\n")).split("\n\n")[0] ?? "";
  const listed = [...section.matchAll(/^ {2}([a-z][a-z-]*) /gm)]
    .map((m) => m[1] as string)
    .filter((c) => c !== "help");
  expect(listed.length).toBeGreaterThan(10);
  expect(listed.filter((c) => !commands.includes(c))).toEqual([]);
});

it("names only flags some command has, where the prose names a flag alone", {
  timeout: 120_000,
}, async () => {
  const readme = texts[0]?.text ?? "";
  const alone = [...new Set([...readme.matchAll(/`(--[a-z][a-z0-9-]*)[^`]*`/g)].map((m) => m[1] as string))];
  expect(alone.length).toBeGreaterThan(10);
  const commands = [...new Set(mentions.map((m) => m.command))];
  const all = new Set(["--help"]);
  for (const command of commands) for (const flag of await helpOf(command)) all.add(flag);
  expect(alone.filter((flag) => !all.has(flag))).toEqual([]);
});

it("runs only npm scripts package.json has", () => {
  const scripts = Object.keys(
    (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> })
      .scripts,
  );
  const named = texts.flatMap(({ doc, text }) =>
    [...text.matchAll(/\bnpm run ([a-z][a-z0-9:-]*)/g)].map((m) => ({ doc, script: m[1] as string })),
  );
  expect(named.length).toBeGreaterThan(5);
  expect(named.filter((n) => !scripts.includes(n.script))).toEqual([]);
});

it("runs the README's pipeline file with the command its first line gives", { timeout: 60_000 }, async () => {
  const files = codeBlocks(texts[0]?.text ?? "").filter(
    (b) => b.lang === "yaml" && /run with: cairn /.test(b.code),
  );
  expect(files.length).toBe(1);
  const yaml = files[0]?.code ?? "";
  const [, name, command] = /^# (\S+) — run with: cairn (.+)$/m.exec(yaml) ?? [];
  expect(name).toBeDefined();
  const dir = join(cwd, "pipeline-file");
  await mkdir(dir);
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  await writeFile(join(dir, name as string), yaml);
  // The agents the file names (`./module.js:Export`): a class export is instantiated, a function called.
  const modules = new Map<string, string[]>();
  for (const [, file, exported] of yaml.matchAll(/\.\/([\w-]+\.js):(\w+)/g)) {
    const code = /^[A-Z]/.test(exported as string)
      ? `export class ${exported} { process(inputs) { return { rows: [{ source: inputs.source }] }; } }`
      : `export function ${exported}(inputs) { return { written: inputs.rows.length }; }`;
    modules.set(file as string, [...(modules.get(file as string) ?? []), code]);
  }
  expect(modules.size).toBeGreaterThan(0);
  for (const [file, code] of modules) await writeFile(join(dir, file), code.join("\n"));
  const result = await runCairn((command as string).split(" "), { cwd: dir });
  expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
  expect(result.stdout).toMatch(/completed/);
});
