/** Key files: round trip, mode 0600 written atomically, refused when open to others, clear errors that never quote a key. */
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/core/errors.js";
import {
  keyFileOptions,
  newKey,
  nextKeyId,
  readKeyFile,
  readKeyFileContent,
  writeKeyFile,
} from "../../src/transforms/key-file.js";
import { createKeyRing } from "../../src/transforms/keys.js";

const posix = process.platform !== "win32";
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-keyfile-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The error `promise` rejects with. */
async function failure(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}

describe("key files", () => {
  it("round-trips a ring, written 0600 with no temp file left", async () => {
    const path = join(dir, "cairn.keys");
    const keys = { k1: newKey(), k2: newKey() };
    await writeKeyFile(path, { activeKeyId: "k2", keys });
    const read = await readKeyFile(path);
    expect(read).toEqual({ activeKeyId: "k2", keys });
    const ring = createKeyRing(read);
    expect(ring.ids).toEqual(["k1", "k2"]);
    expect(ring.get("k1")?.length).toBe(32);
    expect(await readdir(dir)).toEqual(["cairn.keys"]);
    if (posix) expect((await stat(path)).mode & 0o777).toBe(0o600);
    const parsed = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
    expect(parsed).toEqual({ cairn_key_file: 1, active_key_id: "k2", keys });
  });

  it("replaces an existing file atomically and keeps it 0600", async () => {
    const path = join(dir, "cairn.keys");
    await writeKeyFile(path, { activeKeyId: "k1", keys: { k1: newKey() } });
    const { keys } = await readKeyFileContent(path);
    await writeKeyFile(path, { activeKeyId: "k2", keys: { ...keys, k2: newKey() } });
    expect((await readKeyFile(path)).activeKeyId).toBe("k2");
    expect(await readdir(dir)).toEqual(["cairn.keys"]);
    if (posix) expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it.skipIf(!posix)(
    "refuses a key file readable or writable by group or others, saying chmod 600",
    async () => {
      const path = join(dir, "open.keys");
      await writeKeyFile(path, { activeKeyId: "k1", keys: { k1: newKey() } });
      for (const mode of [0o644, 0o640, 0o602, 0o620]) {
        await chmod(path, mode);
        const error = await failure(readKeyFile(path));
        expect(error.code).toBe(ErrorCode.InvalidArgument);
        expect(error.message).toContain(`chmod 600 ${path}`);
      }
      await chmod(path, 0o400);
      expect((await readKeyFile(path)).activeKeyId).toBe("k1");
    },
  );

  it("names the path of a missing file", async () => {
    const path = join(dir, "absent.keys");
    const error = await failure(readKeyFile(path));
    expect(error.code).toBe(ErrorCode.InvalidArgument);
    expect(error.message).toContain(path);
    expect(error.message).toContain("cairn keys generate");
  });

  it("refuses malformed files with a clear message that never quotes a key", async () => {
    const secret = newKey();
    const short = Buffer.alloc(16, 7).toString("base64");
    const cases: [string, string][] = [
      [`{"keys": {"k1": "${secret}"`, "is not JSON"],
      [JSON.stringify({ active_key_id: "k1", keys: { k1: secret } }), "not a cairn key file"],
      [JSON.stringify({ cairn_key_file: 2, active_key_id: "k1", keys: { k1: secret } }), "format 2"],
      [
        JSON.stringify({ cairn_key_file: 1, active_key_id: "k1", keys: { k1: secret }, key: secret }),
        "unknown field key",
      ],
      [
        JSON.stringify({ cairn_key_file: 1, active_key_id: "k9", keys: { k1: secret } }),
        "activeKeyId must name one of the keys",
      ],
      [JSON.stringify({ cairn_key_file: 1, active_key_id: "k1", keys: { k1: short } }), "16 bytes long"],
      [JSON.stringify({ cairn_key_file: 1, active_key_id: "k1", keys: { k1: `${secret}!` } }), "not base64"],
      [JSON.stringify({ cairn_key_file: 1, active_key_id: "k1", keys: { k1: 5 } }), "must be base64 text"],
      [JSON.stringify({ cairn_key_file: 1, active_key_id: "k1", keys: [] }), '"keys" must be an object'],
    ];
    for (const [text, message] of cases) {
      const path = join(dir, "bad.keys");
      await writeFile(path, text, { mode: 0o600 });
      const error = await failure(readKeyFile(path));
      expect(error.code).toBe(ErrorCode.InvalidArgument);
      expect(error.message).toContain(message);
      expect(error.message).toContain(path);
      expect(error.message).not.toContain(secret);
      expect(error.message).not.toContain(short);
    }
  });

  it("reads key file text from elsewhere (an environment variable) and names the next free id", () => {
    const text = JSON.stringify({ cairn_key_file: 1, active_key_id: "a", keys: { a: newKey() } });
    expect(keyFileOptions(text, "$KEYS").activeKeyId).toBe("a");
    expect(() => keyFileOptions("nope", "$KEYS")).toThrow(/key file \$KEYS is not JSON/);
    expect(nextKeyId({})).toBe("k1");
    expect(nextKeyId({ k1: 1, k3: 1 })).toBe("k2");
    expect(nextKeyId({ k1: 1, k2: 1 })).toBe("k3");
  });
});
