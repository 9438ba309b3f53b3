/** Escaping of stored text for the report formats: terminal, Markdown and HTML. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * Shows control characters from stored data (an error message with ANSI escapes, a carriage
 * return) as `\xNN` instead of letting them drive the terminal. Newlines and tabs stay.
 */
export function terminalSafe(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** Escapes text for a Markdown paragraph or table cell (CommonMark backslash escapes). */
export function escapeMarkdown(text: string): string {
  // `<` must not start inline HTML, `|` must not end a cell, a newline must not end a row.
  // An underscore inside a word never makes emphasis, so ids like `etl_run_1` stay readable.
  return text
    .replace(/[\\`*[\]<>|&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, (c) => `\\${c}`)
    .replace(/\r?\n/g, " ");
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Splits a recommendation into plain text and the `commands` it quotes. A stray backtick in an
 * error message only shifts what is shown as code; both parts are escaped either way.
 */
export function codeSegments(text: string): { code: boolean; text: string }[] {
  return text.split("`").map((part, i) => ({ code: i % 2 === 1, text: part }));
}

/** Markdown for a recommendation: its quoted commands as code spans, the rest escaped. */
export function mdInline(text: string): string {
  return codeSegments(text)
    .map((s) =>
      s.code ? (s.text === "" ? "" : `\`${s.text.replace(/\r?\n/g, " ")}\``) : escapeMarkdown(s.text),
    )
    .join("");
}

/** A Markdown table, every cell escaped. */
export function mdTable(headers: readonly string[], rows: readonly string[][]): string[] {
  return [
    `| ${headers.map(escapeMarkdown).join(" | ")} |`,
    `| ${headers.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.map(escapeMarkdown).join(" | ")} |`),
  ];
}

/** A fence longer than any run of backticks in the text, so the text cannot close it. */
export function fence(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  return "`".repeat(Math.max(3, longest + 1));
}
