/** The store flags that name the store a command used, for the commands it prints for the user. */
import type { Command } from "commander";
import { DEFAULT_BASE_PATH } from "../index.js";
import { STORE_OPTION_KEYS } from "./store-options.js";

/** Hides the password of a URL (`postgres://me:secret@db` → `postgres://me:<password>@db`). */
export function redactPassword(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@/\s]+@/i, "$1:<password>@");
}

/**
 * The store flags given to `command`, so a printed command (`cairn run ... --run-id`) uses the
 * same store verbatim. Every option of the command except `own` and `--json` is a store flag,
 * so new store flags are carried over without changes here. When the store came from
 * `CAIRN_STORE` or the default, it is named explicitly: the command may be run where
 * `CAIRN_STORE` is not set, and `cairn run` without either uses the pipeline file's own
 * settings, which may point elsewhere or leave checkpoints off. Passwords
 * in URLs are replaced by `<password>`: reports are files that get shared.
 */
export function storeArgs(
  command: Command,
  own: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const flags = command.opts<Record<string, unknown>>();
  const args: string[] = [];
  for (const option of command.options) {
    const key = option.attributeName();
    const value = flags[key];
    if (key === "json" || own.includes(key) || option.long === undefined) continue;
    if (typeof value === "string" || typeof value === "number")
      args.push(option.long, redactPassword(String(value)));
  }
  if (args.length > 0) return args;
  if (env.CAIRN_STORE) return ["--store", redactPassword(env.CAIRN_STORE)];
  return ["--base-path", DEFAULT_BASE_PATH];
}

/**
 * The store flags the user gave to `command`, verbatim (passwords hidden), as text to append to a
 * command printed as a hint (` --store sqlite:./c.db`); empty when none was given, as the same
 * environment then picks the same store.
 */
export function storeHint(command: Command): string {
  const flags = command.opts<Record<string, unknown>>();
  const args: string[] = [];
  for (const option of command.options) {
    const key = option.attributeName();
    const value = flags[key];
    // The key file too: a hinted command reading encrypted runs needs it as much as the store.
    if (!(STORE_OPTION_KEYS.includes(key) || key === "keyFile") || option.long === undefined) continue;
    if (typeof value === "string" || typeof value === "number")
      args.push(option.long, quoted(redactPassword(String(value))));
  }
  return args.map((a) => ` ${a}`).join("");
}

/** Quotes a value for a POSIX shell when it holds anything but plain path and URL characters. */
function quoted(value: string): string {
  return /^[\w@%+=:,./~-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}
