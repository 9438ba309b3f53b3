import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CheckpointCorruptError, InvalidArgumentError, KeyMissingError } from "../../src/core/errors.js";
import type { StoredMetadata } from "../../src/core/record.js";
import { isEnvelope, markSealed, sealedError } from "../../src/core/sealed.js";
import { loadCodec } from "../../src/transforms/compression.js";
import { keyedAddress, newDataKey, openDataKey, rewrapDataKey } from "../../src/transforms/data-key.js";
import { openEnvelope, parseEnvelope, readOutline, seal } from "../../src/transforms/envelope.js";
import { createKeyRing } from "../../src/transforms/keys.js";

const k1 = randomBytes(32);
const k2 = randomBytes(32);
const ring = createKeyRing({ keys: { k1, k2: k2.toString("base64") }, activeKeyId: "k1" });
const opener = { decoder: async (name: string) => loadCodec(name as "gzip"), maxBytes: 1 << 30 };
const body =
  '{"completed_stages":["a","b"],"output_refs":{"a":"' +
  "1".repeat(64) +
  '"},"pending_stages":["c"],"provenance_hashes":{"a":"p"},"state_data":{"secret":"MARKER"}}';
const ctx = { role: "checkpoint" as const, pipelineId: "run1", id: "run1_a_1" };
/** Only the id and format of a record matter to an outline. */
const META = { checkpoint_id: "run1_a_1", format_version: 1 } as StoredMetadata;

describe("key rings", () => {
  it("refuses keys of the wrong length, bad base64, unknown active ids and misspelt options", () => {
    expect(() => createKeyRing({ keys: { k1: randomBytes(16) }, activeKeyId: "k1" })).toThrow(
      /k1 is 16 bytes long; an AES-256 key is 32 bytes/,
    );
    expect(() => createKeyRing({ keys: { k1: "not base64!" }, activeKeyId: "k1" })).toThrow(
      InvalidArgumentError,
    );
    expect(() => createKeyRing({ keys: { k1 }, activeKeyId: "k9" })).toThrow(
      /must name one of the keys \(k1\)/,
    );
    expect(() => createKeyRing({ keys: {}, activeKeyId: "k1" })).toThrow(/holds no key/);
    expect(() => createKeyRing({ keys: { "bad id": k1 }, activeKeyId: "bad id" })).toThrow(
      /not a valid name/,
    );
    expect(() => createKeyRing({ keys: { k1 }, activeKeyId: "k1", rotate: true })).toThrow(/rotate/);
  });

  it("never puts a key in a message", () => {
    const secret = randomBytes(31).toString("base64");
    try {
      createKeyRing({ keys: { k1: secret }, activeKeyId: "k1" });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).not.toContain(secret);
    }
  });
});

describe("data keys", () => {
  it("wraps a run's data key, opens it with the ring, and re-wraps it under another key", () => {
    const key = newDataKey("run1", ring);
    expect(key.kekId).toBe("k1");
    const opened = openDataKey("run1", key.record, ring);
    expect(opened.recordKey.equals(key.recordKey)).toBe(true);
    const rewrapped = rewrapDataKey("run1", key.record, ring, "k2");
    const onlyK2 = createKeyRing({ keys: { k2 }, activeKeyId: "k2" });
    expect(openDataKey("run1", rewrapped, onlyK2).addressKey.equals(key.addressKey)).toBe(true);
    expect(() => openDataKey("run1", key.record, onlyK2)).toThrow(KeyMissingError);
    // Bound to its run: a key record copied to another run does not unwrap.
    expect(() => openDataKey("run2", key.record, ring)).toThrow(CheckpointCorruptError);
  });

  it("addresses outputs by a keyed hash that differs per run", () => {
    const a = newDataKey("run1", ring);
    const b = newDataKey("run2", ring);
    expect(keyedAddress(a, '"x"')).toMatch(/^[0-9a-f]{64}$/);
    expect(keyedAddress(a, '"x"')).not.toBe(keyedAddress(b, '"x"'));
  });
});

describe("envelopes", () => {
  const key = newDataKey("run1", ring);

  it("leaves small plain text as it is and round-trips sealed text exactly", async () => {
    const gzip = await loadCodec("gzip", 6, 1 << 20);
    expect(seal(body, ctx, gzip, undefined)).toBe(body);
    for (const codec of [undefined, await loadCodec("gzip", 6, 0), await loadCodec("brotli", 4, 0)]) {
      const sealed = seal(body, ctx, codec, key);
      expect(isEnvelope(sealed)).toBe(true);
      expect(sealed).not.toContain("MARKER");
      expect(await openEnvelope(parseEnvelope(sealed, "x"), ctx, key, opener, "x")).toBe(body);
    }
  });

  it("keeps the outline of an encrypted body readable and authenticated", async () => {
    const sealed = seal(body, ctx, undefined, key);
    expect(readOutline(META, sealed)).toEqual({
      completed_stages: ["a", "b"],
      output_refs: { a: "1".repeat(64) },
      pending_stages: ["c"],
    });
    const changed = sealed.replace('"pending_stages":["c"]', '"pending_stages":["d"]');
    await expect(openEnvelope(parseEnvelope(changed, "x"), ctx, key, opener, "x")).rejects.toThrow(
      /fails authentication/,
    );
  });

  it("refuses ciphertext moved to another record or run", async () => {
    const sealed = seal(body, ctx, undefined, key);
    for (const other of [
      { ...ctx, id: "run1_b_2" },
      { ...ctx, pipelineId: "run2" },
      { ...ctx, role: "output" as const },
    ]) {
      await expect(openEnvelope(parseEnvelope(sealed, "x"), other, key, opener, "x")).rejects.toThrow(
        CheckpointCorruptError,
      );
    }
  });

  it("seals a body without the canonical layout whole, with no outline", async () => {
    const odd = '{"state_data":1,"completed_stages":[]}';
    const sealed = seal(odd, ctx, undefined, key);
    expect(parseEnvelope(sealed, "x").o).toBeUndefined();
    expect(await openEnvelope(parseEnvelope(sealed, "x"), ctx, key, opener, "x")).toBe(odd);
    expect(() => readOutline(META, sealed)).toThrow(KeyMissingError);
  });

  it("says which key a sealed text needs", () => {
    const sealed = markSealed(
      seal(body, ctx, undefined, key),
      new KeyMissingError("k7", "key-encryption-key", "x"),
    );
    const error = sealedError(sealed, "Checkpoint run1_a_1");
    expect(error).toMatchObject({ code: "CAIRN_KEY_MISSING", keyId: "k7", kind: "key-encryption-key" });
    expect(error.message).toContain("key id k7");
  });
});
