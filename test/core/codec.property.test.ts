/**
 * Property-based tests of the codec: decode(encode(x)) is x, with exact types, for arbitrary
 * values mixing everything the codec supports; equal values encode to the same text (and hash)
 * whatever their key insertion order; anything it cannot store is refused with its path.
 * fast-check prints the seed and counterexample path of a failure, so it reproduces with
 * `fc.assert(..., { seed, path })`.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decode, encode, encodeByCopy } from "../../src/core/codec.js";
import { UnserializableValueError } from "../../src/core/errors.js";
import { sha256 } from "../../src/core/record.js";

const RUNS = { numRuns: Number(process.env.CAIRN_PROPERTY_RUNS ?? 300), verbose: 1 } as const;

/** Code units of any kind: printable, control, astral halves and lone surrogates. */
const codeUnit = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
  fc.constantFrom('"', "\\", "\n", "\u2028", "$", "😀"),
);
const text = fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.string({ unit: codeUnit }));

/** Keys that need care: index-like, the codec's tag, `__proto__`, inherited names. */
const key = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: text },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "__proto__",
      "$cairn",
      "v",
      "constructor",
      "toString",
      "hasOwnProperty",
      "",
      "0",
      "1",
      "10",
      "01",
      "-1",
      "1.5",
      "4294967294",
      "4294967295",
      "9007199254740993",
    ),
  },
  { weight: 1, arbitrary: fc.nat().map(String) },
);

const number = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(-0, 0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 5e-324, 1e21),
  fc.constantFrom(Number.MAX_VALUE, Number.MIN_SAFE_INTEGER, 2 ** 53 + 2),
);

const typedArray: fc.Arbitrary<ArrayBufferView> = fc.oneof(
  fc.int8Array(),
  fc.uint8Array(),
  fc.uint8ClampedArray(),
  fc.int16Array(),
  fc.uint16Array(),
  fc.int32Array(),
  fc.uint32Array(),
  fc.float32Array(),
  fc.float64Array(),
  fc.bigInt64Array(),
  fc.bigUint64Array(),
);

/** A view that starts inside its buffer, so only its own bytes may be written. */
const offsetView = typedArray.map((a) => {
  const view = a as unknown as { subarray(start: number): ArrayBufferView; length: number };
  return view.length > 1 ? view.subarray(1) : a;
});

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
  number,
  text,
  fc.bigInt(),
  fc.date(),
  fc.constant(new Date(Number.NaN)),
  fc.uint8Array().map((a) => Buffer.from(a)),
  typedArray,
  offsetView,
);

/** Builds an object with these own keys, in this order; `__proto__` as an own property. */
function objectOf(entries: readonly [string, unknown][], nullProto: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = nullProto ? Object.create(null) : {};
  for (const [k, v] of entries)
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc.array(tie("value"), { maxLength: 5 }),
    fc
      .tuple(
        fc.uniqueArray(fc.tuple(key, tie("value")), { maxLength: 6, selector: ([k]) => k }),
        fc.boolean(),
      )
      .map(([entries, nullProto]) => objectOf(entries, nullProto)),
    fc.array(fc.tuple(fc.oneof(leaf, tie("value")), tie("value")), { maxLength: 4 }).map((e) => new Map(e)),
    fc.array(fc.oneof(leaf, tie("value")), { maxLength: 4 }).map((e) => new Set(e)),
  ),
}));

const bytesOf = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

/** Where `a` and `b` differ, exactly (types, prototypes, -0, NaN, order of Map/Set), or undefined. */
function difference(a: unknown, b: unknown, at = "value"): string | undefined {
  if (typeof a !== typeof b) return `${at}: ${typeof a} vs ${typeof b}`;
  if (typeof a !== "object" || a === null || b === null)
    return Object.is(a, b) ? undefined : `${at}: ${String(a)} vs ${String(b)}`;
  const x = a as object;
  const y = b as object;
  if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) return `${at}: different prototypes`;
  if (x instanceof Date) return Object.is(x.getTime(), (y as Date).getTime()) ? undefined : `${at}: date`;
  if (ArrayBuffer.isView(x)) {
    const same = x.constructor === y.constructor && bytesOf(x).equals(bytesOf(y as ArrayBufferView));
    return same ? undefined : `${at}: ${x.constructor.name} bytes`;
  }
  const pairs = (p: [unknown, unknown][], q: [unknown, unknown][], label: string) => {
    if (p.length !== q.length) return `${at}: ${p.length} vs ${q.length} ${label}`;
    for (let i = 0; i < p.length; i++) {
      const [pk, pv] = p[i] as [unknown, unknown];
      const [qk, qv] = q[i] as [unknown, unknown];
      const found = difference(pk, qk, `${at}<${label} ${i}>`) ?? difference(pv, qv, `${at}[${i}]`);
      if (found) return found;
    }
    return undefined;
  };
  if (x instanceof Map) return pairs([...x], [...(y as Map<unknown, unknown>)], "map entry");
  if (x instanceof Set)
    return pairs(
      [...x].map((v) => [v, v]),
      [...(y as Set<unknown>)].map((v) => [v, v]),
      "set item",
    );
  const keys = Reflect.ownKeys(x).map(String).sort();
  const otherKeys = Reflect.ownKeys(y).map(String).sort();
  if (keys.join("\0") !== otherKeys.join("\0")) return `${at}: keys ${keys} vs ${otherKeys}`;
  for (const k of keys) {
    const found = difference(
      (x as Record<string, unknown>)[k],
      (y as Record<string, unknown>)[k],
      `${at}[${JSON.stringify(k)}]`,
    );
    if (found) return found;
  }
  return undefined;
}

/** A copy of `v` whose objects get their keys in another order (picked by `seed`). */
function reordered(v: unknown, seed: number): unknown {
  if (typeof v !== "object" || v === null || ArrayBuffer.isView(v) || v instanceof Date) return v;
  if (Array.isArray(v)) return v.map((e, i) => reordered(e, seed + i));
  if (v instanceof Map)
    return new Map([...v].map(([k, e], i) => [reordered(k, seed + i), reordered(e, seed - i)]));
  if (v instanceof Set) return new Set([...v].map((e, i) => reordered(e, seed + i)));
  const entries = Object.keys(v).map((k, i): [string, unknown] => [
    k,
    reordered((v as Record<string, unknown>)[k], seed ^ i),
  ]);
  // A seeded Fisher-Yates shuffle: deterministic, so a failure replays from fast-check's seed.
  let state = seed >>> 0 || 1;
  for (let i = entries.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const j = state % (i + 1);
    [entries[i], entries[j]] = [entries[j] as [string, unknown], entries[i] as [string, unknown]];
  }
  return objectOf(entries, Object.getPrototypeOf(v) === null);
}

describe("codec properties", () => {
  it("decodes what it encodes to an exactly equal value", () => {
    fc.assert(
      fc.property(value, (v) => {
        const text = encode(v);
        const back = decode(text);
        const found = difference(v, back);
        if (found) throw new Error(`round trip differs at ${found}; text ${text}`);
        // Decoding is not lossy either way: encoding the decoded value gives the same text.
        expect(encode(back)).toBe(text);
      }),
      RUNS,
    );
  });

  it("encodes equal values to the same text and hash, whatever their key insertion order", () => {
    fc.assert(
      fc.property(value, fc.integer(), (v, seed) => {
        const text = encode(v);
        const other = encode(reordered(v, seed));
        expect(other).toBe(text);
        expect(sha256(other)).toBe(sha256(text));
        // The fast path (plain JSON written with a sorted key list) matches the copying encoder.
        expect(encodeByCopy(v)).toBe(text);
      }),
      RUNS,
    );
  });

  it("encodes plain JSON data to the same text as the copying encoder", () => {
    const json = fc.jsonValue().chain((v) => fc.tuple(fc.constant(v), fc.integer()));
    fc.assert(
      fc.property(json, ([v, seed]) => {
        expect(encode(v)).toBe(encodeByCopy(v));
        expect(encode(reordered(v, seed))).toBe(encode(v));
      }),
      RUNS,
    );
  });
});

class Point {
  constructor(readonly x: number) {}
}

/** Values the codec must refuse; `CYCLE` stands for a reference back to the tree's root. */
const unsupported = fc.constantFrom<[string, () => unknown]>(
  ["function", () => () => 1],
  ["symbol", () => Symbol("s")],
  ["class instance", () => new Point(1)],
  ["regexp", () => /x/],
  ["error", () => new Error("x")],
  ["boxed string", () => new String("x")],
  ["weak map", () => new WeakMap()],
  ["promise", () => Promise.resolve(1)],
  ["array buffer", () => new ArrayBuffer(4)],
  ["data view", () => new DataView(new ArrayBuffer(4))],
  ["cycle", () => CYCLE],
);
const CYCLE = Symbol("cycle: a reference to the root");

/** A step down a tree: an array index, an object key, or a Map value under a string key. */
type Step = { kind: "index"; at: number } | { kind: "key"; at: string } | { kind: "map"; at: string };
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.nat({ max: 3 }).map((at) => ({ kind: "index" as const, at })),
  key.map((at) => ({ kind: "key" as const, at })),
  fc.string({ maxLength: 4 }).map((at) => ({ kind: "map" as const, at })),
);

/** The path as the codec's errors write it. */
function formatPath(steps: readonly Step[]): string {
  let out = "value";
  for (const s of steps) {
    if (s.kind === "index") out += `[${s.at}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(s.at)) out += `.${s.at}`;
    else out += `[${JSON.stringify(s.at)}]`;
  }
  return out;
}

/** A tree of supported siblings with `bad` at the end of `steps`. */
function plant(steps: readonly Step[], bad: unknown, filler: unknown): unknown {
  const [first, ...rest] = steps;
  if (!first) return bad;
  const inner = plant(rest, bad, filler);
  if (first.kind === "index") return [...Array.from({ length: first.at }, () => filler), inner, filler];
  if (first.kind === "map") return new Map<unknown, unknown>([[first.at, inner]]);
  return objectOf([[first.at, inner]], false);
}

describe("codec refusals", () => {
  it("refuses functions, symbols, class instances and cycles with the path of the bad value", () => {
    const filler = leaf.filter((v) => v !== undefined);
    const steps = fc.array(step, { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(steps, unsupported, filler, (path, [, make], fill) => {
        const bad = make();
        const subject = bad === CYCLE ? cyclic(path, fill) : plant(path, bad, fill);
        let thrown: unknown;
        try {
          encode(subject);
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(UnserializableValueError);
        const e = thrown as UnserializableValueError;
        expect(e.path).toBe(formatPath(path));
        expect(e.message).toContain(e.path);
      }),
      RUNS,
    );
  });
});

/** A tree whose node at the end of `steps` is a reference back to the root. */
function cyclic(steps: readonly Step[], filler: unknown): unknown {
  const tree = plant(steps, null, filler);
  // Replace the marker by the root: walk down to its parent and point it upwards.
  let node: unknown = tree;
  for (let i = 0; i < steps.length - 1; i++) node = child(node, steps[i] as Step);
  const last = steps[steps.length - 1] as Step;
  if (last.kind === "index") (node as unknown[])[last.at] = tree;
  else if (last.kind === "map") (node as Map<unknown, unknown>).set(last.at, tree);
  else
    Object.defineProperty(node, last.at, {
      value: tree,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return tree;
}

function child(node: unknown, s: Step): unknown {
  if (s.kind === "index") return (node as unknown[])[s.at];
  if (s.kind === "map") return (node as Map<unknown, unknown>).get(s.at);
  return (node as Record<string, unknown>)[s.at];
}
