/**
 * `--key-file` for `cairn export` and `cairn import`, standing in until the shared store options
 * carry it for every command (i13-keys): a tiny reader of the key file format
 * (`{"cairn_key_file":1,"active_key_id":…,"keys":{…}}`) whose ring goes to the manager these two
 * commands build. When the shared options already define `--key-file`, this adds nothing.
 */
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { CheckpointManager, InvalidArgumentError } from "../index.js";
import type { EncryptionOptions } from "../transforms/keys.js";
import { managerOptions, type StoreFlags, withManager } from "./store-options.js";

/** The store flags and the key file. */
export interface KeyedFlags extends StoreFlags {
  keyFile?: string;
}

/** Adds `--key-file` to a command unless it already has it (call after `addStoreOptions`). */
export function addKeyFileOption(command: Command): Command {
  if (command.options.some((option) => option.long === "--key-file")) return command;
  return command.option(
    "--key-file <path>",
    "key file with the key-encryption keys of encrypted runs (default: $CAIRN_KEY_FILE)",
  );
}

/** Reads a key file's ring; the message names the path and what is wrong, never a key. */
async function readKeyRing(path: string): Promise<EncryptionOptions> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new InvalidArgumentError(
      `key file ${path} cannot be read as JSON (${(error as NodeJS.ErrnoException).code ?? "not JSON"})`,
    );
  }
  const file = parsed as { cairn_key_file?: unknown; active_key_id?: unknown; keys?: unknown } | null;
  if (file === null || typeof file !== "object" || file.cairn_key_file !== 1)
    throw new InvalidArgumentError(`${path} is not a cairn key file (version 1)`);
  const { keys, active_key_id: activeKeyId } = file;
  if (keys === null || typeof keys !== "object" || Array.isArray(keys) || typeof activeKeyId !== "string")
    throw new InvalidArgumentError(`key file ${path} needs "active_key_id" and "keys"`);
  // Lengths and ids are checked by the manager's key ring.
  return { keys: keys as Record<string, string>, activeKeyId };
}

/**
 * Runs `task` with a manager built from the flags and, when `--key-file` or `CAIRN_KEY_FILE`
 * names one, the key file's ring; closed afterwards whatever happens.
 */
export async function withKeyedManager<T>(
  flags: KeyedFlags,
  readOnly: boolean,
  task: (manager: CheckpointManager) => Promise<T>,
): Promise<T> {
  const path = flags.keyFile ?? process.env.CAIRN_KEY_FILE;
  if (path === undefined || path === "") return withManager(flags, task, readOnly);
  const encryption = await readKeyRing(path);
  const manager = new CheckpointManager({
    ...managerOptions(flags),
    ...(readOnly ? { readOnly } : {}),
    encryption,
  });
  let result: T;
  try {
    result = await task(manager);
  } catch (error) {
    await manager.close().catch(() => undefined);
    throw error;
  }
  await manager.close();
  return result;
}
