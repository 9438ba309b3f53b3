/**
 * `cairn keys`: key files. `generate` creates one (mode 0600) or adds a new active key to it;
 * `list` shows the key ids and which is active. Key bytes are never printed.
 */

import type { Command } from "commander";
import { isValidName } from "../../core/ids.js";
import {
  type KeyFileContent,
  newKey,
  nextKeyId,
  readKeyFileContent,
  writeKeyFile,
} from "../../transforms/key-file.js";
import { exists, hasCode } from "../../util/fs-util.js";
import { UsageError } from "../exit-codes.js";
import { printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { keyFilePath } from "../store-options.js";

interface KeyFlags {
  keyFile?: string;
  id?: string;
  json?: boolean;
}

/** The key file the flags or `CAIRN_KEY_FILE` name; a usage error when neither does. */
function requiredPath(flags: KeyFlags): string {
  const path = keyFilePath(flags);
  if (path === undefined)
    throw new UsageError("name the key file with --key-file <path> (or CAIRN_KEY_FILE)");
  return path;
}

/** Creates the key file with one key, or adds a key to it; the new key becomes the active one. */
async function generate(flags: KeyFlags): Promise<void> {
  const path = requiredPath(flags);
  const id = flags.id;
  if (id !== undefined && !isValidName(id))
    throw new UsageError(`--id ${JSON.stringify(id)} is not a valid key id (letters, digits, '.', '_', '-')`);
  const existing = (await exists(path)) ? await readKeyFileContent(path) : undefined;
  const keys = { ...(existing?.keys ?? {}) };
  const keyId = id ?? nextKeyId(keys);
  if (keyId in keys)
    throw new UsageError(`${path} already has a key ${keyId}: a key id names one key for good`);
  keys[keyId] = newKey();
  const content: KeyFileContent = { activeKeyId: keyId, keys };
  await writeKeyFile(path, content).catch((error: unknown) => {
    if (hasCode(error, "ENOENT")) throw new UsageError(`cannot create ${path}: its folder does not exist`);
    throw error;
  });
  if (flags.json) printJson({ keyFile: path, keyId, created: existing === undefined, activeKeyId: keyId });
  else printText(keyId);
  if (!flags.json && existing !== undefined)
    process.stderr.write(
      `cairn: ${keyId} is now the active key of ${path}; new runs use it. ` +
        `To re-wrap existing runs under it: cairn rekey --key-file ${path} --store ...\n`,
    );
}

/** Lists the key ids of a key file and which one is active. */
async function list(flags: KeyFlags): Promise<void> {
  const path = requiredPath(flags);
  const { keys, activeKeyId } = await readKeyFileContent(path);
  const ids = Object.keys(keys).sort();
  if (flags.json) printJson({ keyFile: path, activeKeyId, keyIds: ids });
  else printText(ids.map((k) => `${k}${k === activeKeyId ? "  (active)" : ""}`).join("\n"));
}

/** Registers `cairn keys` and its subcommands. */
export function registerKeys(program: Command): void {
  const keys = program
    .command("keys")
    .summary("Create and list key files (encryption at rest)")
    .description(
      "Key files hold the key ring of encryption at rest: key ids, their 32-byte keys and the active " +
        "id that new runs use. Give one to any command with --key-file or CAIRN_KEY_FILE.",
    );
  keys
    .command("generate")
    .summary("Create a key file, or add a new active key to one")
    .description(
      "Create the key file (mode 0600) with one random key, or add a new random key to an existing one " +
        "and make it the active key; prints the new key id (never the key)",
    )
    .option("--key-file <path>", "the key file (default: CAIRN_KEY_FILE)")
    .option("--id <id>", "id of the new key (default: k1, or the next free kN)")
    .option("--json", "print the result as one JSON document on stdout")
    .addHelpText(
      "after",
      examples(
        "cairn keys generate --key-file ./cairn.keys",
        "cairn keys generate --key-file ./cairn.keys --id k2",
      ),
    )
    .action(generate);
  keys
    .command("list")
    .summary("List the key ids of a key file")
    .description("List the key ids of a key file and which one is active (never the keys)")
    .option("--key-file <path>", "the key file (default: CAIRN_KEY_FILE)")
    .option("--json", "print the result as one JSON document on stdout")
    .addHelpText("after", examples("cairn keys list --key-file ./cairn.keys"))
    .action(list);
}
