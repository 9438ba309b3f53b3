/**
 * The command lines the docs show exist: every `cairn <command>` in the README and CONTRIBUTING
 * (shell blocks, inline code, the command reference's headings) is a command of the built CLI,
 * and each flag given to it is one of that command's options (or its subcommand's, as for
 * `keys generate`) by its own `--help`; a flag named alone in the prose belongs to some command;
 * every `npm run <script>` is a script of package.json; the pipeline-file example runs with the
 * command its first line gives.
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

/** The subcommands a `--help` text lists in its Commands section (`keys` → generate, list). */
function subcommandsOf(help: string): Set<string> {
  const at = help.indexOf("\nCommands:\n");
  if (at < 0) return new Set();
  const section = help.slice(at).split("\n\n")[0] ?? "";
  return new Set([...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1] as string));
}

const helps = new Map<string, Promise<{ options: Set<string>; subcommands: Set<string> }>>();
/** The options and subcommands of one command, `keys` or `keys generate` (its `--help` is run once per test file). */
function helpOf(command: string): Promise<{ options: Set<string>; subcommands: Set<string> }> {
  let help = helps.get(command);
  if (!help) {
    help = runCairn([...command.split(" "), "--help"], { cwd }).then((result) => {
      expect(result.code, `cairn ${command} --help: ${result.stderr}`).toBe(0);
      return { options: optionsOf(result.stdout), subcommands: subcommandsOf(result.stdout) };
    });
    helps.set(command, help);
  }
  return help;
}

/** The command a mention's flags belong to: `keys generate` for `cairn keys generate --id k2`. */
async function ownerOf(mention: { command: string; text: string }): Promise<string> {
  const { subcommands } = await helpOf(mention.command);
  const sub = new RegExp(`\\b${mention.command}\\s+([a-z][a-z-]*)`).exec(mention.text)?.[1];
  return sub !== undefined && subcommands.has(sub) ? `${mention.command} ${sub}` : mention.command;
}

it("documents only commands and flags the CLI has", { timeout: 120_000 }, async () => {
  expect(mentions.length).toBeGreaterThan(30);
  const commands = [...new Set(mentions.map((m) => m.command))];
  const owners = await Promise.all(mentions.map(ownerOf));
  const options = new Map<string, Set<string>>();
  for (const owner of new Set(owners)) options.set(owner, (await helpOf(owner)).options);
  const unknown = mentions.flatMap((m, i) =>
    m.flags
      .filter((flag) => !options.get(owners[i] as string)?.has(flag))
      .map((flag) => `${m.doc}:${m.line}: cairn ${owners[i]} has no ${flag} (${m.text})`),
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
  const owners = [...new Set(await Promise.all(mentions.map(ownerOf)))];
  const all = new Set(["--help"]);
  for (const owner of owners) for (const flag of (await helpOf(owner)).options) all.add(flag);
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
