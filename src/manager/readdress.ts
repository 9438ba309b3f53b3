/**
 * Re-addressing for decrypted exports (`decrypt`). An encrypted run references its outputs by
 * keyed address (HMAC-SHA-256 under the run's key), which an importer without that key cannot
 * check, and the addresses are inside each checksum. A decrypted export therefore references
 * every output by its SHA-256 and seals each record again: the same ids, states, outputs,
 * timestamps, statuses, sizes and record format; a new checksum (by the record's format), and a
 * `parent_checksum` that is the parent's new checksum, so the chain holds in the file. A record
 * with no keyed output keeps its checksum.
 */
import { canonicalJson } from "../core/codec.js";
import { bodyText } from "../core/formats.js";
import { sha256 } from "../core/record.js";
import { EncodedOutput, sealBody } from "./build.js";
import type { VerifiedRecord } from "./verify.js";

/** Re-seals the verified records of one run, oldest first, with outputs addressed by SHA-256. */
export class Readdresser {
  /** The new checksum of each checkpoint re-sealed so far, by id: its children's parent_checksum. */
  private readonly checksums = new Map<string, string>();
  /** The SHA-256 of each output address seen so far: every output is hashed once. */
  private readonly shas = new Map<string, string>();

  /** `verified` re-sealed; its parent, when re-sealed earlier, gives the new parent_checksum. */
  readdress(verified: VerifiedRecord): VerifiedRecord {
    const { record, body, stored, outputs } = verified;
    const m = record.metadata;
    const encoded = new Map<string, EncodedOutput>();
    for (const [stage, address] of Object.entries(body.output_refs)) {
      const text = outputs.get(address) as string;
      let sha = this.shas.get(address);
      if (sha === undefined) {
        sha = sha256(text);
        this.shas.set(address, sha);
      }
      encoded.set(stage, EncodedOutput.verified(text, sha));
    }
    // A parent not re-sealed here (gone, or left out as invalid) keeps the link it had: no break.
    const parent = m.parent_checkpoint_id;
    const parentChecksum = (parent !== null && this.checksums.get(parent)) || m.parent_checksum;
    const { checksum: _old, data_size: dataSize, ...draft } = m;
    const refs = Object.fromEntries(
      [...encoded].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([stage, out]) => [stage, out.hash]),
    );
    // The body as stored, in its own format, with only its output references changed.
    const restored = { ...stored, output_refs: refs };
    const sealed = sealBody(
      { ...draft, parent_checksum: parentChecksum },
      bodyText(restored, canonicalJson(stored.state_data)),
      encoded,
      dataSize,
    );
    this.checksums.set(m.checkpoint_id, sealed.record.metadata.checksum);
    return {
      record: sealed.record,
      body: { ...body, output_refs: refs },
      stored: restored,
      outputs: new Map(sealed.outputs.map((o) => [o.hash, o.body])),
    };
  }
}
