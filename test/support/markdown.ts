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

/** The package's import specifiers, old name and new, mapped to the sources they stand for. */
const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*)(["'])(cairn|cairn-pipelines)(\/testing)?\2/g;

/** Rewrites `"cairn"` / `"cairn-pipelines"` (and `/testing`) imports to the files given. */
export function rewriteImports(code: string, targets: { root: string; testing: string }): string {
  return code.replace(
    SPECIFIER,
    (_all, lead: string, quote: string, _name: string, testing: string | undefined) =>
      `${lead}${quote}${testing ? targets.testing : targets.root}${quote}`,
  );
}
