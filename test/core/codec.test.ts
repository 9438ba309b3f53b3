import { describe, expect, it } from "vitest";
import {
  canonicalJson,
  decode,
  decodeTree,
  encode,
  encodeByCopy,
  MAX_DEPTH,
  MAX_TREE_DEPTH,
} from "../../src/core/codec.js";
import {
  CairnError,
  CheckpointCorruptError,
  ErrorCode,
  UnserializableValueError,
} from "../../src/core/errors.js";

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a throw");
}

/** decode(encode(x)). */
function roundTrip<T>(value: T, root?: string): unknown {
  return decode(encode(value, root));
}

/** Runs `fn`, expects it to throw an UnserializableValueError and returns that error. */
function unserializable(fn: () => unknown): UnserializableValueError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UnserializableValueError);
    expect(error).toBeInstanceOf(CairnError);
    const e = error as UnserializableValueError;
    expect(e.code).toBe("CAIRN_UNSERIALIZABLE");
    expect(e.code).toBe(ErrorCode.Unserializable);
    expect(e.name).toBe("UnserializableValueError");
    expect(e.message).toContain(e.path);
    return e;
  }
  throw new Error("expected an UnserializableValueError, but nothing was thrown");
}

const TYPED_ARRAY_SAMPLES = [
  new Int8Array([-128, -1, 0, 1, 127]),
  new Uint8Array([0, 1, 254, 255]),
  new Uint8ClampedArray([0, 128, 255]),
  new Int16Array([-32768, -1, 0, 32767]),
  new Uint16Array([0, 1, 65535]),
  new Int32Array([-2147483648, -1, 0, 2147483647]),
  new Uint32Array([0, 1, 4294967295]),
  new Float32Array([0, -1.5, 3.25, Number.POSITIVE_INFINITY]),
  new Float64Array([0, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Math.PI]),
  new BigInt64Array([-(2n ** 63n), -1n, 0n, 1n, 2n ** 63n - 1n]),
  new BigUint64Array([0n, 1n, 2n ** 64n - 1n]),
];

describe("codec round-trip: JSON values", () => {
  it("round-trips primitives", () => {
    for (const value of [
      null,
      true,
      false,
      0,
      1,
      -1,
      1.5,
      -2.75,
      1e21,
      5e-324,
      Number.MAX_SAFE_INTEGER,
      "",
      "x",
    ]) {
      expect(roundTrip(value)).toStrictEqual(value);
    }
  });

  it("round-trips nested objects and arrays", () => {
    const value = {
      name: "etl",
      count: 42,
      ratio: 0.30000000000000004,
      enabled: true,
      missing: null,
      tags: ["a", "b", ["c", ["d", []]]],
      nested: { deep: { deeper: { deepest: [1, { x: [null, false, {}] }] } } },
      empty: {},
      emptyList: [],
    };
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it("round-trips empty containers at top level", () => {
    expect(roundTrip({})).toStrictEqual({});
    expect(roundTrip([])).toStrictEqual([]);
  });

  it("round-trips numeric-looking and unusual keys", () => {
    const value = { "10": "ten", "2": "two", "": "empty", "a b": 1, "a.b": 2, "[0]": 3, __proto__x: 4 };
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it("round-trips strings with unicode, emoji, quotes, newlines and lone surrogates", () => {
    const strings = [
      "héllo wörld",
      "日本語テキスト",
      "emoji 😀👩‍👩‍👧‍👦🏳️‍🌈",
      "double \"quotes\" and 'single'",
      "back\\slash and /slash",
      "line1\nline2\r\nline3",
      "tab\there",
      "nul\u0000byte and \u001f control",
      "\u2028line separator\u2029paragraph separator",
      "lone high \ud800 surrogate",
      "lone low \udc00 surrogate",
      "\ud83d",
      "\ude00\ud83d",
      "$cairn",
      '{"$cairn":"undefined"}',
    ];
    for (const s of strings) {
      expect(roundTrip(s)).toBe(s);
    }
    expect(roundTrip(strings)).toStrictEqual(strings);
    const keyed = Object.fromEntries(strings.map((s, i) => [s, i]));
    expect(roundTrip(keyed)).toStrictEqual(keyed);
  });
});

describe("codec round-trip: special numbers and undefined", () => {
  it("round-trips NaN, Infinity and -Infinity", () => {
    expect(Number.isNaN(roundTrip(Number.NaN))).toBe(true);
    expect(roundTrip(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(roundTrip(Number.NEGATIVE_INFINITY)).toBe(Number.NEGATIVE_INFINITY);
    const value = { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, ninf: Number.NEGATIVE_INFINITY };
    expect(roundTrip(value)).toStrictEqual(value);
    expect(roundTrip([Number.NaN, Number.POSITIVE_INFINITY])).toStrictEqual([
      Number.NaN,
      Number.POSITIVE_INFINITY,
    ]);
  });

  it("round-trips -0 exactly and keeps +0 positive", () => {
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(Object.is(roundTrip(0), 0)).toBe(true);
    const decoded = roundTrip({ neg: -0, pos: 0, list: [-0] }) as {
      neg: number;
      pos: number;
      list: number[];
    };
    expect(Object.is(decoded.neg, -0)).toBe(true);
    expect(Object.is(decoded.pos, 0)).toBe(true);
    expect(Object.is(decoded.list[0], -0)).toBe(true);
  });

  it("round-trips undefined at top level", () => {
    const text = encode(undefined);
    expect(typeof text).toBe("string");
    expect(decode(text)).toBeUndefined();
  });

  it("round-trips undefined as a property value (the key is kept)", () => {
    const value = { a: undefined, b: 1, nested: { c: undefined } };
    const decoded = roundTrip(value) as Record<string, unknown>;
    expect(decoded).toStrictEqual(value);
    expect(Object.hasOwn(decoded, "a")).toBe(true);
    expect(Object.hasOwn(decoded.nested as object, "c")).toBe(true);
  });

  it("round-trips undefined as an array element", () => {
    const value = [undefined, 1, undefined];
    const decoded = roundTrip(value) as unknown[];
    expect(decoded).toStrictEqual(value);
    expect(decoded).toHaveLength(3);
  });

  it("decodes sparse array holes as undefined elements", () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is what is being tested
    const sparse = [1, , 3];
    const decoded = roundTrip(sparse) as unknown[];
    expect(decoded).toStrictEqual([1, undefined, 3]);
    expect(1 in decoded).toBe(true);

    const holes = roundTrip(new Array(3)) as unknown[];
    expect(holes).toStrictEqual([undefined, undefined, undefined]);
    expect(0 in holes && 1 in holes && 2 in holes).toBe(true);
  });
});

describe("codec round-trip: Date and BigInt", () => {
  it("round-trips valid dates to Date instances", () => {
    for (const iso of [
      "2024-01-01T12:00:00.123Z",
      "1970-01-01T00:00:00.000Z",
      "1969-12-31T23:59:59.999Z",
      "0000-01-01T00:00:00.000Z",
      "-000001-06-15T00:00:00.000Z",
      "+010000-01-01T00:00:00.000Z",
      "+275760-09-13T00:00:00.000Z",
    ]) {
      const date = new Date(iso);
      const decoded = roundTrip(date);
      expect(decoded).toBeInstanceOf(Date);
      expect((decoded as Date).getTime()).toBe(date.getTime());
      expect(decoded).toStrictEqual(date);
    }
    const value = { when: new Date("2024-02-29T23:59:59.999Z"), list: [new Date(0)] };
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it("round-trips an invalid Date to an invalid Date", () => {
    const decoded = roundTrip(new Date("not a date"));
    expect(decoded).toBeInstanceOf(Date);
    expect(Number.isNaN((decoded as Date).getTime())).toBe(true);
    const nested = roundTrip({ at: new Date(Number.NaN) }) as { at: Date };
    expect(nested.at).toBeInstanceOf(Date);
    expect(Number.isNaN(nested.at.getTime())).toBe(true);
  });

  it("round-trips BigInts of any size and sign", () => {
    const huge = 2n ** 1024n + 12345678901234567890n;
    for (const value of [0n, 1n, -1n, 2n ** 64n, -(2n ** 200n), huge, -huge]) {
      const decoded = roundTrip(value);
      expect(typeof decoded).toBe("bigint");
      expect(decoded).toBe(value);
    }
    const value = { big: huge, list: [-(3n ** 300n)] };
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it("keeps BigInt and number distinct", () => {
    const decoded = roundTrip({ n: 1, b: 1n }) as { n: unknown; b: unknown };
    expect(typeof decoded.n).toBe("number");
    expect(typeof decoded.b).toBe("bigint");
  });
});

describe("codec round-trip: Map and Set", () => {
  it("round-trips a Map with non-string keys and nested values", () => {
    const objectKey = { id: 1, tags: ["x"] };
    const map = new Map<unknown, unknown>([
      ["str", 1],
      [1, "one"],
      [-0, "negative zero"],
      [Number.NaN, "nan"],
      [true, { nested: [1, 2] }],
      [null, new Map([["inner", new Set([1, 2])]])],
      [undefined, undefined],
      [10n, new Date("2024-01-01T00:00:00.000Z")],
      [objectKey, new Map<unknown, unknown>([[[1, 2], { deep: 10n }]])],
      [new Date("2020-01-01T00:00:00.000Z"), Buffer.from("buf")],
    ]);
    const decoded = roundTrip(map);
    expect(decoded).toBeInstanceOf(Map);
    expect(decoded).toStrictEqual(map);
    const decodedMap = decoded as Map<unknown, unknown>;
    expect(decodedMap.size).toBe(map.size);
    expect(decodedMap.get("str")).toBe(1);
    expect(decodedMap.get(1)).toBe("one");
    expect(decodedMap.get(Number.NaN)).toBe("nan");
    expect(decodedMap.get(10n)).toStrictEqual(new Date("2024-01-01T00:00:00.000Z"));
    expect(decodedMap.has(undefined)).toBe(true);
  });

  it("keeps Map insertion order", () => {
    const map = new Map<unknown, unknown>([
      ["z", 1],
      [3, 2],
      ["a", 3],
      [1, 4],
      [{ k: "obj" }, 5],
      ["m", 6],
    ]);
    const decoded = roundTrip(map) as Map<unknown, unknown>;
    expect([...decoded.keys()]).toStrictEqual([...map.keys()]);
    expect([...decoded.values()]).toStrictEqual([1, 2, 3, 4, 5, 6]);
  });

  it("round-trips empty Map and Set", () => {
    expect(roundTrip(new Map())).toStrictEqual(new Map());
    expect(roundTrip(new Set())).toStrictEqual(new Set());
  });

  it("round-trips a Set of mixed values, keeping insertion order", () => {
    const set = new Set<unknown>(["b", 2, "a", 1n, null, undefined, { x: 1 }, [1, [2]], new Set([3]), -0]);
    const decoded = roundTrip(set);
    expect(decoded).toBeInstanceOf(Set);
    expect(decoded).toStrictEqual(set);
    expect([...(decoded as Set<unknown>)]).toStrictEqual([...set]);
  });

  it("round-trips Maps and Sets nested in plain data", () => {
    const value = {
      index: new Map([["a", new Set(["x", "y"])]]),
      list: [new Map([[1, [new Set([new Map([[2n, "deep"]])])]]])],
    };
    expect(roundTrip(value)).toStrictEqual(value);
  });
});

describe("codec round-trip: binary data", () => {
  it("round-trips a Buffer as a Buffer", () => {
    const buffer = Buffer.from([0, 1, 2, 253, 254, 255]);
    const decoded = roundTrip(buffer);
    expect(Buffer.isBuffer(decoded)).toBe(true);
    expect(decoded).toStrictEqual(buffer);
    expect(Buffer.compare(decoded as Buffer, buffer)).toBe(0);
  });

  it("round-trips empty and text Buffers", () => {
    const empty = roundTrip(Buffer.alloc(0));
    expect(Buffer.isBuffer(empty)).toBe(true);
    expect((empty as Buffer).length).toBe(0);
    const text = roundTrip({ b: Buffer.from("héllo 😀", "utf8") }) as { b: Buffer };
    expect(Buffer.isBuffer(text.b)).toBe(true);
    expect(text.b.toString("utf8")).toBe("héllo 😀");
  });

  it("round-trips only the bytes of a Buffer that is a slice of a larger one", () => {
    const big = Buffer.from("0123456789", "latin1");
    const slice = big.subarray(2, 6);
    const decoded = roundTrip(slice);
    expect(Buffer.isBuffer(decoded)).toBe(true);
    expect((decoded as Buffer).toString("latin1")).toBe("2345");
  });

  it("round-trips a Uint8Array as a Uint8Array, not a Buffer", () => {
    const bytes = new Uint8Array([1, 2, 3, 255]);
    const decoded = roundTrip(bytes);
    expect(Buffer.isBuffer(decoded)).toBe(false);
    expect(decoded).toBeInstanceOf(Uint8Array);
    expect((decoded as Uint8Array).constructor).toBe(Uint8Array);
    expect(decoded).toStrictEqual(bytes);
  });

  it("keeps Buffer and Uint8Array distinct inside one value", () => {
    const value = { buf: Buffer.from([1, 2]), u8: new Uint8Array([1, 2]) };
    const decoded = roundTrip(value) as { buf: unknown; u8: unknown };
    expect(Buffer.isBuffer(decoded.buf)).toBe(true);
    expect(Buffer.isBuffer(decoded.u8)).toBe(false);
    expect(decoded).toStrictEqual(value);
  });

  it("round-trips a Float64Array, including NaN, -0 and infinities", () => {
    const floats = new Float64Array([0, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -1e308, 5e-324]);
    const decoded = roundTrip(floats);
    expect(decoded).toBeInstanceOf(Float64Array);
    expect(decoded).toStrictEqual(floats);
    const d = decoded as Float64Array;
    expect(Object.is(d[1], -0)).toBe(true);
    expect(Number.isNaN(d[3])).toBe(true);
  });

  it("round-trips a BigInt64Array", () => {
    const bigs = new BigInt64Array([-(2n ** 63n), -1n, 0n, 42n, 2n ** 63n - 1n]);
    const decoded = roundTrip(bigs);
    expect(decoded).toBeInstanceOf(BigInt64Array);
    expect(decoded).toStrictEqual(bigs);
  });

  it("round-trips every typed array kind with its constructor", () => {
    for (const sample of TYPED_ARRAY_SAMPLES) {
      const decoded = roundTrip(sample) as ArrayBufferView;
      expect(decoded.constructor).toBe(sample.constructor);
      expect(decoded).toStrictEqual(sample);
    }
    expect(roundTrip(TYPED_ARRAY_SAMPLES)).toStrictEqual(TYPED_ARRAY_SAMPLES);
  });

  it("round-trips empty typed arrays", () => {
    for (const Ctor of [Uint8Array, Float64Array, BigInt64Array, Int16Array]) {
      const empty = new Ctor(0);
      const decoded = roundTrip(empty) as ArrayBufferView;
      expect(decoded.constructor).toBe(Ctor);
      expect(decoded.byteLength).toBe(0);
    }
  });

  it("round-trips only the bytes of a Uint8Array view with an offset", () => {
    const backing = new ArrayBuffer(16);
    new Uint8Array(backing).set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const view = new Uint8Array(backing, 3, 4);
    const decoded = roundTrip(view) as Uint8Array;
    expect(decoded).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(decoded)).toBe(false);
    expect([...decoded]).toStrictEqual([3, 4, 5, 6]);
    expect(decoded).toStrictEqual(view);
    expect(decoded.byteLength).toBe(4);
    expect(decoded.buffer.byteLength).toBe(4);
  });

  it("round-trips only the elements of a Float64Array view with an offset", () => {
    const backing = new Float64Array([1.5, 2.5, 3.5, 4.5, 5.5]);
    const view = new Float64Array(backing.buffer, 8, 3);
    const decoded = roundTrip(view) as Float64Array;
    expect(decoded).toBeInstanceOf(Float64Array);
    expect([...decoded]).toStrictEqual([2.5, 3.5, 4.5]);
    expect(decoded.buffer.byteLength).toBe(24);
  });

  it("returns fresh binary data that does not share memory with the input", () => {
    const bytes = new Uint8Array([1, 2, 3]);
    const decoded = roundTrip(bytes) as Uint8Array;
    bytes[0] = 99;
    expect(decoded[0]).toBe(1);
  });
});

describe("codec round-trip: objects with a $cairn key and null prototypes", () => {
  it("round-trips a plain object that has a $cairn key as a plain object", () => {
    const value = { $cairn: "date", v: "2024-01-01T00:00:00.000Z" };
    const decoded = roundTrip(value);
    expect(decoded).not.toBeInstanceOf(Date);
    expect(decoded).toStrictEqual(value);
  });

  it("round-trips $cairn objects that look like every tag", () => {
    for (const tag of [
      "undefined",
      "number",
      "bigint",
      "date",
      "buffer",
      "bytes",
      "map",
      "set",
      "object",
      "nope",
    ]) {
      const value = { $cairn: tag, v: "1", t: "Float64Array" };
      expect(roundTrip(value)).toStrictEqual(value);
    }
    expect(roundTrip({ $cairn: "undefined" })).toStrictEqual({ $cairn: "undefined" });
    expect(roundTrip({ $cairn: "object", v: { $cairn: "undefined" } })).toStrictEqual({
      $cairn: "object",
      v: { $cairn: "undefined" },
    });
  });

  it("round-trips $cairn objects whose values need tags, and nested ones", () => {
    const value = {
      $cairn: undefined,
      big: 5n,
      inner: { $cairn: { $cairn: [new Date(0), -0] } },
      list: [{ $cairn: null }],
      map: new Map([[{ $cairn: 1 }, { $cairn: 2 }]]),
    };
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it("round-trips the contents of null-prototype objects", () => {
    const dict = Object.create(null) as Record<string, unknown>;
    dict.a = 1;
    dict.b = { c: [1, 2] };
    dict.$cairn = "x";
    const decoded = roundTrip({ dict }) as { dict: Record<string, unknown> };
    expect({ ...decoded.dict }).toStrictEqual({ ...dict });
  });

  it("round-trips null-prototype objects (toStrictEqual, prototype stays null)", () => {
    const dict = Object.create(null) as Record<string, unknown>;
    dict.a = 1;
    dict.nested = { x: [1, undefined] };
    const decoded = roundTrip(dict);
    expect(
      Object.getPrototypeOf(decoded) === null,
      "decoded object should keep its null prototype (it comes back with Object.prototype)",
    ).toBe(true);
    expect(decoded).toStrictEqual(dict);
  });
});

describe("codec round-trip: shared references", () => {
  it("allows the same object to appear twice (not circular)", () => {
    const shared = { x: 1, list: [1, 2] };
    const value = { a: shared, b: shared, list: [shared, shared] };
    expect(() => encode(value)).not.toThrow();
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it("allows shared arrays, Maps and Sets", () => {
    const arr = [1, 2];
    const map = new Map([["k", arr]]);
    const set = new Set([arr]);
    const value = [arr, arr, map, map, set, set, { arr, map, set }];
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it("allows an object to be nested deeply twice along separate branches", () => {
    const leaf = { leaf: true };
    const value = { left: { mid: { leaf } }, right: { mid: { leaf } } };
    expect(roundTrip(value)).toStrictEqual(value);
  });
});

describe("codec canonical form", () => {
  it("does not depend on key insertion order", () => {
    expect(encode({ b: 1, a: 2 })).toBe(encode({ a: 2, b: 1 }));
    expect(encode({ b: 1, a: 2 })).toBe('{"a":2,"b":1}');
    expect(encode({ z: { y: 1, x: 2 }, a: [{ d: 1, c: 2 }] })).toBe(
      encode({ a: [{ c: 2, d: 1 }], z: { x: 2, y: 1 } }),
    );
  });

  it("orders array-index keys numerically first, then the other keys by UTF-16 code units", () => {
    // The order ECMAScript gives an object whose keys were inserted sorted: fixed by the language.
    expect(encode({ b: 1, "10": 2, "9": 3, A: 4, $: 5, "01": 6 })).toBe(
      '{"9":3,"10":2,"$":5,"01":6,"A":4,"b":1}',
    );
    expect(canonicalJson(JSON.parse('{"b":1,"10":2,"9":3}'))).toBe('{"9":3,"10":2,"b":1}');
  });

  it("keeps a __proto__ key as data", () => {
    const value = JSON.parse('{"__proto__":{"polluted":true},"a":1}');
    const text = encode(value);
    expect(text).toBe('{"__proto__":{"polluted":true},"a":1}');
    const back = decode(text) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("encodes records sharing a shape", () => {
    const rows = [
      { b: 1, a: 2 },
      { b: 3, a: 4, c: 5 },
      { a: 6, b: 7 },
      { b: 8, a: { y: 1, x: 2 } },
    ];
    expect(encode(rows)).toBe('[{"a":2,"b":1},{"a":4,"b":3,"c":5},{"a":6,"b":7},{"a":{"x":2,"y":1},"b":8}]');
  });

  it("writes no whitespace", () => {
    const text = encode({
      list: [1, 2, { a: [true, null] }],
      map: new Map([[1, new Set([2])]]),
      date: new Date(0),
      big: 1n,
      nan: Number.NaN,
      bytes: new Float64Array([1]),
      u: undefined,
    });
    expect(text).not.toMatch(/\s/);
  });

  it("gives identical text when encoding twice", () => {
    const value = {
      b: [1, { y: 2, x: 1 }],
      a: new Map<unknown, unknown>([[{ q: 1, p: 2 }, new Set([3n])]]),
      d: new Date("2024-01-01T00:00:00.000Z"),
      e: Buffer.from("hi"),
    };
    const sameContent = {
      e: Buffer.from("hi"),
      d: new Date("2024-01-01T00:00:00.000Z"),
      a: new Map<unknown, unknown>([[{ p: 2, q: 1 }, new Set([3n])]]),
      b: [1, { x: 1, y: 2 }],
    };
    expect(encode(value)).toBe(encode(value));
    expect(encode(sameContent)).toBe(encode(value));
  });

  it("encodes known shapes exactly", () => {
    expect(encode(null)).toBe("null");
    expect(encode("a\nb")).toBe('"a\\nb"');
    expect(encode([1, "two", false])).toBe('[1,"two",false]');
  });

  it("satisfies canonicalJson(JSON.parse(encode(x))) === encode(x) for rich values", () => {
    const rich = {
      zeta: "last",
      alpha: [1, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, undefined, 1e21, 0.1],
      "10": { "2": "b", "1": "a" },
      "a b": "spaced",
      emoji: '😀 \ud800 \n "q" \u2028',
      big: -(2n ** 100n),
      date: new Date("2024-01-01T12:00:00.123Z"),
      badDate: new Date(Number.NaN),
      map: new Map<unknown, unknown>([
        [{ z: 1, a: 2 }, [1, 2]],
        ["b", new Set([1, "1", 1n])],
      ]),
      buffer: Buffer.from([1, 2, 3]),
      bytes: new Uint8Array([4, 5]),
      floats: new Float64Array([1.5]),
      $cairn: { v: 1, $cairn: "nested" },
      nested: { deeper: [{ y: null, x: true }] },
    };
    const text = encode(rich);
    expect(canonicalJson(JSON.parse(text))).toBe(text);
    expect(decode(text)).toStrictEqual(rich);
  });

  it("canonicalJson sorts keys and strips whitespace of any JSON tree", () => {
    expect(canonicalJson(JSON.parse('{ "b" : [ 1 , { "d" : 1 , "c" : 2 } ] , "a" : null }'))).toBe(
      '{"a":null,"b":[1,{"c":2,"d":1}]}',
    );
    expect(canonicalJson("x")).toBe('"x"');
    expect(canonicalJson(3)).toBe("3");
    expect(canonicalJson(null)).toBe("null");
    expect(canonicalJson([])).toBe("[]");
    expect(canonicalJson({})).toBe("{}");
  });

  it("decodeTree revives a parsed tree like decode does", () => {
    const value = { a: new Map([[1n, new Set([undefined])]]), d: new Date(5), $cairn: 1 };
    const text = encode(value);
    expect(decodeTree(JSON.parse(text))).toStrictEqual(decode(text));
    expect(decodeTree(JSON.parse(text))).toStrictEqual(value);
  });

  it("rejects unknown tags when decoding, as corrupt data", () => {
    for (const text of ['{"$cairn":"no-such-tag","v":1}', '{"$cairn":"bytes","t":"constructor","v":""}']) {
      const error = thrown(() => decode(text));
      expect(error).toBeInstanceOf(CheckpointCorruptError);
      expect(error).toMatchObject({ code: ErrorCode.Corrupt });
      expect(thrown(() => decodeTree(JSON.parse(text)))).toBeInstanceOf(CheckpointCorruptError);
    }
    expect(thrown(() => decode('{"$cairn":"no-such-tag"}')).message).toContain(
      'unknown codec tag "no-such-tag"',
    );
  });

  it.each([
    ["text that is not JSON", "{", SyntaxError],
    ["a bigint that is not a number", '{"$cairn":"bigint","v":"1.5"}', SyntaxError],
    ["a map whose entries are not a list", '{"$cairn":"map","v":5}', TypeError],
    ["a set whose items are not a list", '{"$cairn":"set","v":null}', TypeError],
  ])("throws CheckpointCorruptError for %s, with the original as cause", (_, text, causeType) => {
    const error = thrown(() => decode(text)) as CheckpointCorruptError;
    expect(error).toBeInstanceOf(CheckpointCorruptError);
    expect(error.code).toBe("CAIRN_CORRUPT");
    expect(error.cause).toBeInstanceOf(causeType);
    expect(error.message).toContain((error.cause as Error).message);
  });
});

describe("codec refusals", () => {
  it("refuses a function, with its path", () => {
    const e = unserializable(() => encode({ load: { x: () => 1 } }, "agentOutputs"));
    expect(e.path).toBe("agentOutputs.load.x");
    expect(e.message).toContain("agentOutputs.load.x");
    expect(e.message).toMatch(/function/i);
  });

  it("refuses functions of every kind", () => {
    const fns: unknown[] = [
      function named() {},
      async () => 1,
      function* gen() {},
      class Foo {},
      Math.max,
      (() => 1).bind(null),
    ];
    for (const fn of fns) {
      const e = unserializable(() => encode({ f: fn }));
      expect(e.path).toBe("value.f");
    }
  });

  it("refuses a function at top level with the root as path", () => {
    expect(unserializable(() => encode(() => 1)).path).toBe("value");
    expect(unserializable(() => encode(() => 1, "stateData")).path).toBe("stateData");
  });

  it("names array indices in the path", () => {
    const rows: unknown[] = [{}, {}, {}, { fn: () => 1 }];
    const e = unserializable(() => encode({ rows }, "agentOutputs"));
    expect(e.path).toBe("agentOutputs.rows[3].fn");
    expect(e.message).toContain("agentOutputs.rows[3].fn");
    expect(unserializable(() => encode([[0, [1, Symbol("s")]]])).path).toBe("value[0][1][1]");
  });

  it("quotes keys that are not identifiers", () => {
    expect(unserializable(() => encode({ "a b": () => 1 })).path).toBe('value["a b"]');
    expect(unserializable(() => encode({ "a b": { c: () => 1 } }, "root")).path).toBe('root["a b"].c');
    expect(unserializable(() => encode({ "0": () => 1 })).path).toBe('value["0"]');
    expect(unserializable(() => encode({ "a-b": () => 1 })).path).toBe('value["a-b"]');
    expect(unserializable(() => encode({ 'q"': () => 1 })).path).toBe('value["q\\""]');
    expect(unserializable(() => encode({ $ok_1: () => 1 })).path).toBe("value.$ok_1");
  });

  it("refuses a symbol, with its path", () => {
    expect(unserializable(() => encode(Symbol("top"))).path).toBe("value");
    const e = unserializable(() => encode({ a: [Symbol.iterator] }, "stateData"));
    expect(e.path).toBe("stateData.a[0]");
    expect(e.message).toMatch(/symbol/i);
  });

  it("refuses a circular object reference", () => {
    const obj: Record<string, unknown> = { a: 1 };
    obj.self = obj;
    const e = unserializable(() => encode(obj));
    expect(e.path).toBe("value.self");
    expect(e.message).toMatch(/circular/i);

    const deep: Record<string, unknown> = { child: { grand: {} } };
    (deep.child as { grand: Record<string, unknown> }).grand.back = deep;
    expect(unserializable(() => encode({ root: deep }, "s")).path).toBe("s.root.child.grand.back");
  });

  it("refuses a circular array reference", () => {
    const arr: unknown[] = [1, 2];
    arr.push(arr);
    const e = unserializable(() => encode(arr));
    expect(e.path).toBe("value[2]");
    expect(e.message).toMatch(/circular/i);

    const outer: unknown[] = [];
    outer.push({ list: [outer] });
    expect(unserializable(() => encode(outer)).path).toBe("value[0].list[0]");
  });

  it("refuses cycles through Maps and Sets", () => {
    const map = new Map<string, unknown>();
    map.set("me", map);
    const mapError = unserializable(() => encode(map));
    expect(mapError.message).toMatch(/circular/i);
    expect(mapError.path).toBe("value.me");

    const set = new Set<unknown>();
    set.add(set);
    expect(unserializable(() => encode(set)).message).toMatch(/circular/i);

    const obj: Record<string, unknown> = {};
    obj.m = new Map([["x", obj]]);
    expect(unserializable(() => encode(obj)).message).toMatch(/circular/i);
  });

  it("refuses a class instance and names the class", () => {
    class Foo {
      x = 1;
    }
    const e = unserializable(() => encode({ item: new Foo() }, "agentOutputs"));
    expect(e.path).toBe("agentOutputs.item");
    expect(e.message).toContain("Foo");
    expect(e.message).toContain("agentOutputs.item");

    const anon = unserializable(() => encode(new (class Foo {})()));
    expect(anon.path).toBe("value");
    expect(anon.message).toContain("Foo");
  });

  it("refuses a RegExp", () => {
    const e = unserializable(() => encode({ pattern: /a+b/g }));
    expect(e.path).toBe("value.pattern");
    expect(e.message).toContain("RegExp");
  });

  it("refuses a WeakMap and a WeakSet", () => {
    const wm = unserializable(() => encode({ cache: new WeakMap() }));
    expect(wm.path).toBe("value.cache");
    expect(wm.message).toContain("WeakMap");
    expect(unserializable(() => encode([new WeakSet()])).message).toContain("WeakSet");
  });

  it("refuses other non-plain objects", () => {
    const others: [unknown, string][] = [
      [Promise.resolve(1), "Promise"],
      [new Error("boom"), "Error"],
      [new DataView(new ArrayBuffer(2)), "DataView"],
      [new ArrayBuffer(2), "ArrayBuffer"],
      [new URL("https://example.com"), "URL"],
      [Object.create({ inherited: 1 }), "value"],
    ];
    for (const [value, word] of others) {
      const e = unserializable(() => encode({ v: value }));
      expect(e.path).toBe("value.v");
      expect(e.message).toContain(word);
    }
  });

  it("names Map values and Set items in the path", () => {
    const byString = unserializable(() => encode({ m: new Map([["key", () => 1]]) }));
    expect(byString.path).toBe("value.m.key");
    const byObject = unserializable(() => encode(new Map([[{}, Symbol("x")]])));
    expect(byObject.path).toContain("map value 0");
    const inKey = unserializable(() => encode(new Map([[() => 1, 1]])));
    expect(inKey.path).toContain("map key 0");
    const inSet = unserializable(() => encode(new Set([1, () => 1])));
    expect(inSet.path).toContain("set item 1");
  });

  it("recovers after a refusal: the next encode works", () => {
    unserializable(() => encode({ a: { b: () => 1 } }));
    expect(encode({ a: { b: 1 } })).toBe('{"a":{"b":1}}');
  });
});

describe("codec: the fast path for plain JSON trees", () => {
  // A seeded generator of trees mixing what the fast path takes with what it must hand over.
  function generator(seed: number) {
    let state = seed >>> 0;
    const next = () => {
      state = (state * 1664525 + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
    const KEYS = [
      "b",
      "a",
      "B",
      "é",
      "z1",
      "z10",
      "z2",
      "",
      " ",
      "$x",
      "ünï",
      "😀",
      "aa",
      "a_b",
      "constructor",
    ];
    const RARE_KEYS = ["0", "10", "2", "$cairn", "__proto__", "01", "-1", "1.5"];
    const LEAVES: unknown[] = [0, 1, -1.5, 1e21, 5e-324, "", "text", 'ü\n"\\', true, false, null];
    const RARE_LEAVES: unknown[] = [-0, Number.NaN, Number.POSITIVE_INFINITY, undefined, 1n, new Date(0)];
    const tree = (depth: number, rare: number): unknown => {
      const roll = next();
      if (depth > 4 || roll < 0.35) return next() < rare ? pick(RARE_LEAVES) : pick(LEAVES);
      if (roll < 0.6) return Array.from({ length: Math.floor(next() * 4) }, () => tree(depth + 1, rare));
      const object: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 5); i > 0; i--) {
        const key = next() < rare ? pick(RARE_KEYS) : pick(KEYS);
        Object.defineProperty(object, key, {
          value: tree(depth + 1, rare),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return object;
    };
    return tree;
  }

  it("writes exactly the copier's text for every tree, plain or not", () => {
    let plain = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const value = generator(seed)(0, seed % 3 === 0 ? 0.2 : 0);
      const expected = encodeByCopy(value);
      expect(encode(value)).toBe(expected);
      if (!expected.includes("$cairn")) plain++;
    }
    // Most trees took the fast path; the rest exercised the hand-over.
    expect(plain).toBeGreaterThan(1500);
  });

  it("sorts the keys of records of one shape and of mixed shapes alike", () => {
    const rows = [
      { site: "a", kwh: 1, tags: ["x"] },
      { kwh: 2, site: "b", tags: [] },
      { site: "c", kwh: 3, extra: { z: 1, a: 2 } },
    ];
    expect(encode(rows)).toBe(
      '[{"kwh":1,"site":"a","tags":["x"]},{"kwh":2,"site":"b","tags":[]},{"extra":{"a":2,"z":1},"kwh":3,"site":"c"}]',
    );
  });

  it("never writes a property a plain object only inherits", () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = 1;
    try {
      expect(encode([{ polluted: 2 }, { a: 1 }])).toBe('[{"polluted":2},{"a":1}]');
    } finally {
      delete proto.polluted;
    }
  });
});

describe("codec nesting limit", () => {
  const nest = (levels: number, wrap: (inner: unknown) => unknown, leaf: unknown = "leaf"): unknown => {
    let value = leaf;
    for (let i = 0; i < levels; i++) value = wrap(value);
    return value;
  };
  const kinds: [string, (inner: unknown) => unknown][] = [
    ["objects", (inner) => ({ next: inner })],
    ["arrays", (inner) => [inner]],
    ["Maps", (inner) => new Map([["next", inner]])],
    ["Sets", (inner) => new Set([inner])],
  ];

  it.each(kinds)("round-trips %s nested MAX_DEPTH levels, also as a stored tree", (_, wrap) => {
    const value = nest(MAX_DEPTH, wrap, new Date(0));
    const text = encode(value, "stateData");
    expect(decode(text)).toStrictEqual(value);
    // What import does with a parsed export: the tree's canonical text is the same text.
    expect(canonicalJson(JSON.parse(text))).toBe(text);
  });

  it("refuses one level more at encode time, naming the path", () => {
    const value = nest(MAX_DEPTH + 1, (inner) => ({ next: inner }));
    let error: unknown;
    try {
      encode(value, "stateData");
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UnserializableValueError);
    expect((error as UnserializableValueError).code).toBe("CAIRN_UNSERIALIZABLE");
    expect((error as UnserializableValueError).path).toBe(`stateData${".next".repeat(MAX_DEPTH)}`);
    expect((error as Error).message).toContain(`deeper than ${MAX_DEPTH} levels`);
  });

  it("refuses values far deeper than the limit without overflowing the stack", () => {
    expect(() =>
      encode(
        nest(100_000, (inner) => [inner]),
        "stateData",
      ),
    ).toThrow(UnserializableValueError);
    expect(() => encode(nest(MAX_DEPTH + 1, (inner) => new Map([[1, inner]])))).toThrow(/deeper than/);
  });

  it("still names a cycle a cycle, however deep it sits", () => {
    const ring: Record<string, unknown> = {};
    ring.self = nest(MAX_DEPTH - 2, (inner) => ({ next: inner }), ring);
    expect(() => encode(ring)).toThrow(/circular reference/);
  });

  it("refuses a stored tree deeper than any value at the limit could be", () => {
    expect(() => canonicalJson(nest(MAX_TREE_DEPTH + 1, (inner) => [inner]))).toThrow(
      UnserializableValueError,
    );
  });
});
