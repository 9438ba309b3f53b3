/**
 * The lossless canonical codec. `encode` turns a value into canonical JSON text: object keys
 * sorted, no whitespace, and every value JSON cannot hold written as a tagged object
 * `{"$cairn":tag,"v":...}`. The same content always gives the same bytes, in any process, so
 * hashes of encoded values are stable. `decode` reverses it exactly.
 *
 * Round-trips: JSON values, undefined, NaN, ±Infinity, -0, BigInt, Date, Map, Set, Buffer,
 * Uint8Array and the other typed arrays. Refused, with the path of the bad value: functions,
 * symbols, circular references and class instances (their prototype would be lost).
 */
import { UnserializableValueError } from "./errors.js";

const TAG = "$cairn";

type TypedArrayName =
  | "Int8Array"
  | "Uint8Array"
  | "Uint8ClampedArray"
  | "Int16Array"
  | "Uint16Array"
  | "Int32Array"
  | "Uint32Array"
  | "Float32Array"
  | "Float64Array"
  | "BigInt64Array"
  | "BigUint64Array";

const TYPED_ARRAYS: Record<TypedArrayName, new (buffer: ArrayBufferLike) => ArrayBufferView> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
};

function formatPath(path: readonly (string | number)[], root: string): string {
  let out = root;
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(key)) out += `.${key}`;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out;
}

function tagged(tag: string, value?: string): string {
  return value === undefined
    ? `{"${TAG}":${JSON.stringify(tag)}}`
    : `{"${TAG}":${JSON.stringify(tag)},"v":${value}}`;
}

function bytesToBase64(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString("base64");
}

class Encoder {
  private readonly path: (string | number)[] = [];
  private readonly ancestors = new Set<object>();

  constructor(private readonly root: string) {}

  fail(reason: string): never {
    throw new UnserializableValueError(formatPath(this.path, this.root), reason);
  }

  value(value: unknown): string {
    switch (typeof value) {
      case "string":
        return JSON.stringify(value);
      case "number":
        if (Number.isFinite(value)) return Object.is(value, -0) ? tagged("number", '"-0"') : String(value);
        return tagged("number", JSON.stringify(String(value)));
      case "boolean":
        return value ? "true" : "false";
      case "undefined":
        return tagged("undefined");
      case "bigint":
        return tagged("bigint", JSON.stringify(value.toString()));
      case "function":
        return this.fail("functions cannot be stored");
      case "symbol":
        return this.fail("symbols cannot be stored");
      default:
        return value === null ? "null" : this.object(value as object);
    }
  }

  private object(value: object): string {
    if (this.ancestors.has(value)) this.fail("circular reference");
    if (Array.isArray(value)) return this.enter(value, () => this.array(value));
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype)
      return this.enter(value, () => this.plain(value as Record<string, unknown>));
    if (proto === null) {
      // Dictionaries made with Object.create(null) keep their null prototype on decode.
      return tagged(
        "dict",
        this.enter(value, () => this.plain(value as Record<string, unknown>)),
      );
    }
    if (value instanceof Date) {
      const time = value.getTime();
      return tagged("date", Number.isNaN(time) ? "null" : JSON.stringify(value.toISOString()));
    }
    if (Buffer.isBuffer(value)) return tagged("buffer", JSON.stringify(bytesToBase64(value)));
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      const name = value.constructor.name as TypedArrayName;
      if (TYPED_ARRAYS[name] !== value.constructor) this.fail(`unsupported typed array ${name}`);
      const body = name === "Uint8Array" ? "" : `,"t":${JSON.stringify(name)}`;
      return `{"${TAG}":"bytes"${body},"v":${JSON.stringify(bytesToBase64(value))}}`;
    }
    if (value instanceof Map) return this.enter(value, () => this.map(value));
    if (value instanceof Set) return this.enter(value, () => this.set(value));
    const name = (proto as { constructor?: { name?: string } })?.constructor?.name ?? "unknown";
    return this.fail(
      `instances of class ${name} cannot be stored losslessly; convert it to plain data first`,
    );
  }

  private enter(value: object, encode: () => string): string {
    this.ancestors.add(value);
    try {
      return encode();
    } finally {
      this.ancestors.delete(value);
    }
  }

  private array(value: unknown[]): string {
    let out = "[";
    for (let i = 0; i < value.length; i++) {
      this.path.push(i);
      out += (i === 0 ? "" : ",") + this.value(value[i]);
      this.path.pop();
    }
    return `${out}]`;
  }

  private plain(value: Record<string, unknown>): string {
    const keys = Object.keys(value).sort();
    let out = "{";
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      this.path.push(key);
      out += `${i === 0 ? "" : ","}${JSON.stringify(key)}:${this.value(value[key])}`;
      this.path.pop();
    }
    out += "}";
    // A user object that itself has a "$cairn" key is wrapped so decode never mistakes it for a tag.
    return Object.hasOwn(value, TAG) ? tagged("object", out) : out;
  }

  private map(value: Map<unknown, unknown>): string {
    let out = "[";
    let i = 0;
    for (const [key, entry] of value) {
      this.path.push(`<map key ${i}>`);
      const k = this.value(key);
      this.path.pop();
      this.path.push(typeof key === "string" || typeof key === "number" ? String(key) : `<map value ${i}>`);
      out += `${i === 0 ? "" : ","}[${k},${this.value(entry)}]`;
      this.path.pop();
      i++;
    }
    return tagged("map", `${out}]`);
  }

  private set(value: Set<unknown>): string {
    let out = "[";
    let i = 0;
    for (const entry of value) {
      this.path.push(`<set item ${i}>`);
      out += (i === 0 ? "" : ",") + this.value(entry);
      this.path.pop();
      i++;
    }
    return tagged("set", `${out}]`);
  }
}

/**
 * Encodes `value` as canonical JSON text. `root` names the value in error paths
 * (for instance `agentOutputs.load`). Throws {@link UnserializableValueError}.
 */
export function encode(value: unknown, root = "value"): string {
  return new Encoder(root).value(value);
}

/** Canonical JSON text of an already-decoded JSON tree (sorted keys, no whitespace). */
export function canonicalJson(tree: unknown): string {
  if (tree === null || typeof tree !== "object") return JSON.stringify(tree) ?? "null";
  if (Array.isArray(tree)) return `[${tree.map(canonicalJson).join(",")}]`;
  const record = tree as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    out += `${i === 0 ? "" : ","}${JSON.stringify(key)}:${canonicalJson(record[key])}`;
  }
  return `${out}}`;
}

function reviveTagged(node: Record<string, unknown>): unknown {
  const v = node.v;
  switch (node[TAG]) {
    case "undefined":
      return undefined;
    case "number":
      return v === "-0" ? -0 : Number(v);
    case "bigint":
      return BigInt(v as string);
    case "date":
      return new Date(v === null ? Number.NaN : (v as string));
    case "buffer":
      return Buffer.from(v as string, "base64");
    case "bytes": {
      const raw = Buffer.from(v as string, "base64");
      const name = (node.t as TypedArrayName | undefined) ?? "Uint8Array";
      const Ctor = TYPED_ARRAYS[name];
      if (!Ctor) throw new TypeError(`unknown typed array ${String(name)}`);
      // Copy into a fresh, aligned buffer owned by the result.
      const copy = new ArrayBuffer(raw.byteLength);
      new Uint8Array(copy).set(raw);
      return new Ctor(copy);
    }
    case "map":
      return new Map((v as [unknown, unknown][]).map(([k, e]) => [revive(k), revive(e)]));
    case "set":
      return new Set((v as unknown[]).map(revive));
    case "object":
      return reviveObject(v as Record<string, unknown>);
    case "dict":
      return Object.assign(Object.create(null), revive(v));
    default:
      throw new TypeError(`unknown codec tag ${JSON.stringify(node[TAG])}`);
  }
}

function reviveObject(node: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(node)) node[key] = revive(node[key]);
  return node;
}

function revive(node: unknown): unknown {
  if (node === null || typeof node !== "object") return node;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) node[i] = revive(node[i]);
    return node;
  }
  const record = node as Record<string, unknown>;
  if (Object.hasOwn(record, TAG)) return reviveTagged(record);
  return reviveObject(record);
}

/** Decodes canonical JSON text made by {@link encode}. */
export function decode(text: string): unknown {
  const tree: unknown = JSON.parse(text);
  // Most data has no tagged values: skip the revive walk when the tag never occurs.
  return text.includes(`"${TAG}"`) ? revive(tree) : tree;
}

/** Decodes a parsed JSON tree made by {@link encode}; the tree is revived in place. */
export function decodeTree(tree: unknown): unknown {
  return revive(tree);
}
