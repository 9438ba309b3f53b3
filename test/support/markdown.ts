/**
 * Fenced code blocks of a Markdown file, with the HTML comments written just above each one
 * (`<!-- fragment: why -->`), so a test can run the README's examples as written.
 */

/** One fenced block. */
export interface CodeBlock {
  /** The fence's info string's first word (`ts`, `sh`, ...), or "" for a bare fence. */
  lang: string;
  code: string;
  /** 1-based line of the opening fence, for messages. */
  line: number;
  /** The text of each HTML comment on the lines just above the fence (blank lines allowed). */
  markers: string[];
}

const COMMENT = /^<!--\s*(.*?)\s*-->$/;

/** Every fenced block (```), in order; an unclosed fence is an error, not a silently lost block. */
export function codeBlocks(markdown: string): CodeBlock[] {
  const lines = markdown.split("\n");
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)/.exec(lines[i] ?? "");
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l.trimEnd() === "```");
    if (end < 0) throw new Error(`unclosed code fence at line ${i + 1}`);
    const markers: string[] = [];
    for (let j = i - 1; j >= 0; j--) {
      const text = (lines[j] ?? "").trim();
      if (text === "") continue;
      const comment = COMMENT.exec(text);
      if (!comment) break;
      markers.unshift(comment[1] ?? "");
    }
    blocks.push({ lang: open[1] ?? "", code: lines.slice(i + 1, end).join("\n"), line: i + 1, markers });
    i = end;
  }
  return blocks;
}

/** The package's import specifiers, old name and new, with an entry point (`/testing`, `/workers`). */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*)(["'])(cairn|cairn-pipelines)(?:\/([a-z]+))?\2/g;

/** The sources each entry point stands for: `root` for the package itself, then by subpath. */
export type EntryTargets = { root: string } & Record<string, string>;

/** Rewrites `"cairn"` / `"cairn-pipelines"` (and `/<entry>`) imports to the files given. */
export function rewriteImports(code: string, targets: EntryTargets): string {
  return code.replace(
    SPECIFIER,
    (all, lead: string, quote: string, _name: string, entry: string | undefined) => {
      const target = entry === undefined ? targets.root : targets[entry];
      if (target === undefined) throw new Error(`the docs import an unknown entry point: ${all}`);
      return `${lead}${quote}${target}${quote}`;
    },
  );
}

/** A `cairn` command line the docs show: the subcommand and the flags given to it. */
export interface CommandMention {
  command: string;
  flags: string[];
  /** 1-based line in the document, for messages. */
  line: number;
  text: string;
}

const FLAG = /(?<![\w-])--[a-z][a-z0-9-]*/g;
/** `cairn <cmd> ...` or `node dist/cli/main.js <cmd> ...`, after `$ ` and `VAR=value ` prefixes. */
const COMMAND =
  /^(?:\$\s+)?(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:cairn|node dist\/cli\/main\.js)\s+([a-z][a-z-]*)(.*)$/;

function mention(text: string, line: number): CommandMention | undefined {
  const match = COMMAND.exec(text.trim());
  if (!match) return undefined;
  const rest = (match[2] ?? "").replace(/\s#.*$/, ""); // a shell comment is prose
  return { command: match[1] as string, flags: rest.match(FLAG) ?? [], line, text: text.trim() };
}

/**
 * Every `cairn` command line in a Markdown document: lines of shell and bare code blocks (split
 * at `&&`, `|` and `;`), inline code spans, and the bold command headings of a reference section
 * (`**\`run <file> [--dry-run]\`**`, read as `cairn run ...`).
 */
export function commandMentions(markdown: string): CommandMention[] {
  const found: CommandMention[] = [];
  for (const block of codeBlocks(markdown)) {
    if (!["", "sh", "bash", "shell", "console"].includes(block.lang)) continue;
    block.code.split("\n").forEach((text, i) => {
      for (const part of text.split(/&&|\||;/)) {
        const m = mention(part, block.line + 1 + i);
        if (m) found.push(m);
      }
    });
  }
  const prose = markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, (block) => block.replace(/[^\n]/g, " "));
  prose.split("\n").forEach((text, i) => {
    for (const span of text.matchAll(/\*\*`([a-z][a-z-]* [^`]*)`\*\*/g)) {
      const m = mention(`cairn ${span[1]}`, i + 1);
      if (m) found.push(m);
    }
    for (const span of text.matchAll(/(?<!\*\*)`(cairn [^`]+)`/g)) {
      const m = mention(span[1] as string, i + 1);
      if (m) found.push(m);
    }
  });
  return found;
}
