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
import { CheckpointCorruptError, UnserializableValueError } from "./errors.js";

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

const tag = (name: string, v?: unknown): Record<string, unknown> =>
  v === undefined ? { [TAG]: name } : { [TAG]: name, v };

function bytesToBase64(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString("base64");
}

/** Sorted key order of one object shape, cached because records in a list share their shape. */
interface Shape {
  keys: string[];
  sorted: string[];
  hasTagKey: boolean;
}

/** Thrown by the fast pass to ask for the slow pass, which knows the path of the problem. */
class NeedsSlowPass extends Error {}

/**
 * How deeply containers (objects, arrays, Maps, Sets) may nest in one stored value: the root
 * container is level 1. `encode` refuses anything deeper, naming the path; every reader (decode,
 * inspect, compare, export, import) handles values up to this depth. Stored, a Map's entries sit
 * 3 JSON levels below it and a Set's items 2, so stored JSON nests at most 3 × MAX_DEPTH + 1.
 */
export const MAX_DEPTH = 512;

/** How deeply a stored JSON tree may nest: a value at {@link MAX_DEPTH}, all Maps, plus a leaf tag. */
export const MAX_TREE_DEPTH = 3 * MAX_DEPTH + 1;

/**
 * Deeper than this, the fast pass hands over to the slow one (which detects cycles and names the
 * path of a value nested too deeply).
 */
const FAST_DEPTH_LIMIT = MAX_DEPTH;

/**
 * Builds the canonical tree of a value: a copy made of plain objects, arrays and JSON
 * primitives, every object's keys inserted in sorted order, every special value replaced by
 * its tag. `JSON.stringify` of that tree (native, fast) is the canonical text.
 *
 * The fast pass keeps no path and no set of ancestors, only a depth; any problem, or an
 * unusual depth, makes `encode` run the slow pass, which tracks both and names the path.
 */
class CanonicalCopier {
  private readonly path: (string | number)[] = [];
  private readonly ancestors = new Set<object>();
  private readonly shapes: (Shape | undefined)[] = [];
  private depth = 0;

  constructor(
    private readonly root: string,
    /** Slow pass: track the path and detect cycles. */
    private readonly tracking: boolean,
    /** Plain JSON trees (canonicalJson): no tags, numbers as JSON writes them. */
    private readonly plain = false,
  ) {
    // A plain tree is a value as stored, its Maps and Sets already spelt out as tagged arrays.
    this.maxDepth = plain ? MAX_TREE_DEPTH : MAX_DEPTH;
  }

  private readonly maxDepth: number;

  private fail(reason: string): never {
    if (!this.tracking) throw new NeedsSlowPass(reason);
    throw new UnserializableValueError(formatPath(this.path, this.root), reason);
  }

  copy(value: unknown): unknown {
    switch (typeof value) {
      case "string":
      case "boolean":
        return value;
      case "number":
        if (this.plain || (Number.isFinite(value) && !Object.is(value, -0))) return value;
        return tag("number", Object.is(value, -0) ? "-0" : String(value));
      case "undefined":
        return this.plain ? null : tag("undefined");
      case "bigint":
        return tag("bigint", value.toString());
      case "function":
        return this.fail("functions cannot be stored");
      case "symbol":
        return this.fail("symbols cannot be stored");
      default:
        return value === null ? null : this.object(value as object);
    }
  }

  private object(value: object): unknown {
    const proto = Object.getPrototypeOf(value);
    const container =
      Array.isArray(value) ||
      proto === Object.prototype ||
      proto === null ||
      value instanceof Map ||
      value instanceof Set;
    if (!container) return this.leaf(value, proto);
    if (this.tracking) {
      if (this.ancestors.has(value)) this.fail("circular reference");
      if (this.depth >= this.maxDepth)
        this.fail(`it nests deeper than ${this.maxDepth} levels, the most cairn stores`);
      this.ancestors.add(value);
    } else if (this.depth >= this.maxDepth) this.fail("deep");
    // No closure per level: the stack a reader needs stays a few frames per level of nesting.
    this.depth++;
    try {
      if (Array.isArray(value)) return this.array(value);
      if (proto === Object.prototype) return this.plainObject(value as Record<string, unknown>);
      // Dictionaries made with Object.create(null) keep their null prototype on decode.
      if (proto === null) {
        const copy = this.plainObject(value as Record<string, unknown>);
        return this.plain ? copy : tag("dict", copy);
      }
      if (value instanceof Map) return tag("map", this.map(value));
      return tag("set", this.set(value as Set<unknown>));
    } finally {
      this.depth--;
      if (this.tracking) this.ancestors.delete(value);
    }
  }

  /** A value with no nested values to walk: Dates, buffers, typed arrays; other classes are refused. */
  private leaf(value: object, proto: unknown): unknown {
    if (value instanceof Date) {
      const time = value.getTime();
      return tag("date", Number.isNaN(time) ? null : value.toISOString());
    }
    if (Buffer.isBuffer(value)) return tag("buffer", bytesToBase64(value));
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      const name = value.constructor.name as TypedArrayName;
      if (TYPED_ARRAYS[name] !== value.constructor) this.fail(`unsupported typed array ${name}`);
      const base64 = bytesToBase64(value);
      return name === "Uint8Array" ? { [TAG]: "bytes", v: base64 } : { [TAG]: "bytes", t: name, v: base64 };
    }
    const name = (proto as { constructor?: { name?: string } })?.constructor?.name ?? "unknown";
    return this.fail(
      `instances of class ${name} cannot be stored losslessly; convert it to plain data first`,
    );
  }

  private array(value: unknown[]): unknown[] {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      if (this.tracking) this.path.push(i);
      out[i] = this.copy(value[i]);
      if (this.tracking) this.path.pop();
    }
    return out;
  }

  private shapeOf(value: Record<string, unknown>): Shape {
    const keys = Object.keys(value);
    const cached = this.shapes[this.depth];
    if (cached && cached.keys.length === keys.length) {
      let same = true;
      for (let i = 0; i < keys.length; i++) {
        if (keys[i] !== cached.keys[i]) {
          same = false;
          break;
        }
      }
      if (same) return cached;
    }
    const shape = { keys, sorted: [...keys].sort(), hasTagKey: keys.includes(TAG) };
    this.shapes[this.depth] = shape;
    return shape;
  }

  private plainObject(value: Record<string, unknown>): unknown {
    const { sorted, hasTagKey } = this.shapeOf(value);
    const out: Record<string, unknown> = {};
    for (const key of sorted) {
      if (this.tracking) this.path.push(key);
      const copy = this.copy(value[key]);
      // `out[key] = ...` would set the prototype for "__proto__" instead of an own property.
      if (key === "__proto__")
        Object.defineProperty(out, key, {
          value: copy,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      else out[key] = copy;
      if (this.tracking) this.path.pop();
    }
    // A user object with its own "$cairn" key is wrapped so decode never mistakes it for a tag.
    return hasTagKey && !this.plain ? tag("object", out) : out;
  }

  private map(value: Map<unknown, unknown>): unknown[] {
    const out: unknown[] = [];
    let i = 0;
    for (const [key, entry] of value) {
      if (this.tracking) this.path.push(`<map key ${i}>`);
      const k = this.copy(key);
      if (this.tracking) {
        this.path.pop();
        this.path.push(typeof key === "string" || typeof key === "number" ? String(key) : `<map value ${i}>`);
      }
      out.push([k, this.copy(entry)]);
      if (this.tracking) this.path.pop();
      i++;
    }
    return out;
  }

  private set(value: Set<unknown>): unknown[] {
    const out: unknown[] = [];
    let i = 0;
    for (const entry of value) {
      if (this.tracking) this.path.push(`<set item ${i}>`);
      out.push(this.copy(entry));
      if (this.tracking) this.path.pop();
      i++;
    }
    return out;
  }
}

/**
 * Encodes `value` as canonical JSON text. `root` names the value in error paths
 * (for instance `agentOutputs.load`). Throws {@link UnserializableValueError}.
 *
 * Key order: sorted, as ECMAScript enumerates an object whose keys were inserted sorted, i.e.
 * array-index keys ("1", "2", "10") ascending by number first, then the other keys by UTF-16
 * code units. The order is fixed by the language, so it is the same in every process.
 */
export function encode(value: unknown, root = "value"): string {
  const keys = plainJsonKeys(value);
  // JSON.stringify with a list of property names writes every object's keys in the list's
  // order: with the tree's keys sorted, that is the canonical text, without copying the tree.
  if (keys) return JSON.stringify(value, keys);
  return JSON.stringify(canonicalTree(value, root, false));
}

/** Text as the copying encoder writes it; the reference the fast path is tested against. */
export function encodeByCopy(value: unknown, root = "value"): string {
  return JSON.stringify(canonicalTree(value, root, false));
}

const INDEX_LIKE = /^(?:0|[1-9]\d*)$/;

/**
 * Every key of a tree that JSON already writes losslessly, sorted; undefined for any other
 * tree. Qualifies: plain objects and arrays, strings, booleans, null, finite numbers but -0,
 * nested no deeper than the fast copier goes; no `$cairn` or `__proto__` key (they need
 * wrapping), no index-like key (engines enumerate those first, so a property list would
 * reorder them). Anything else (a Date, a Map, undefined, a hole) goes through the copier.
 */
function plainJsonKeys(value: unknown, plain = false): string[] | undefined {
  const walker = new PlainWalker(plain);
  // Sorted by UTF-16 code units, as the copier inserts keys.
  return walker.walk(value, 0) ? [...walker.keys].sort() : undefined;
}

/**
 * True when a key names a non-function property every plain object inherits: JSON.stringify
 * with a property list would write it for objects that lack it (functions it leaves out).
 */
function inheritsData(key: string): boolean {
  return key in Object.prototype && typeof (Object.prototype as Record<string, unknown>)[key] !== "function";
}

class PlainWalker {
  readonly keys = new Set<string>();
  /** The last key list seen at each depth: records of one shape are checked once. */
  private readonly shapes: (string[] | undefined)[] = [];
  private readonly maxDepth: number;

  /** `plain`: a stored tree (canonicalJson), whose `$cairn` keys are tags, written as they are. */
  constructor(private readonly plain: boolean) {
    this.maxDepth = plain ? MAX_TREE_DEPTH : FAST_DEPTH_LIMIT;
  }

  walk(node: unknown, depth: number): boolean {
    switch (typeof node) {
      case "string":
      case "boolean":
        return true;
      case "number":
        return Number.isFinite(node) && !Object.is(node, -0);
      case "object":
        break;
      default:
        return false;
    }
    if (node === null) return true;
    if (depth >= this.maxDepth) return false;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) if (!this.walk(node[i], depth + 1)) return false;
      return true;
    }
    if (Object.getPrototypeOf(node) !== Object.prototype) return false;
    const record = node as Record<string, unknown>;
    const keys = Object.keys(record);
    if (!this.sameShape(keys, depth) && !this.addKeys(keys, depth)) return false;
    for (let i = 0; i < keys.length; i++) {
      if (!this.walk(record[keys[i] as string], depth + 1)) return false;
    }
    return true;
  }

  private sameShape(keys: string[], depth: number): boolean {
    const shape = this.shapes[depth];
    if (shape === undefined || shape.length !== keys.length) return false;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== shape[i]) return false;
    return true;
  }

  private addKeys(keys: string[], depth: number): boolean {
    for (const key of keys) {
      if (this.keys.has(key)) continue;
      if ((key === TAG && !this.plain) || key === "__proto__" || INDEX_LIKE.test(key) || inheritsData(key))
        return false;
      this.keys.add(key);
    }
    this.shapes[depth] = keys;
    return true;
  }
}

/** Canonical JSON text of an already-decoded JSON tree (same key order as {@link encode}). */
export function canonicalJson(tree: unknown): string {
  const keys = plainJsonKeys(tree, true);
  if (keys) return JSON.stringify(tree, keys);
  return JSON.stringify(canonicalTree(tree, "tree", true)) ?? "null";
}

function canonicalTree(value: unknown, root: string, plain: boolean): unknown {
  try {
    return new CanonicalCopier(root, false, plain).copy(value);
  } catch (error) {
    if (!(error instanceof NeedsSlowPass)) throw error;
  }
  try {
    return new CanonicalCopier(root, true, plain).copy(value);
  } catch (error) {
    if (error instanceof RangeError)
      throw new UnserializableValueError(root, "it is nested too deeply to store");
    throw error;
  }
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
      const Ctor = Object.hasOwn(TYPED_ARRAYS, name) ? TYPED_ARRAYS[name] : undefined;
      if (!Ctor) {
        throw new CheckpointCorruptError(
          undefined,
          `it does not decode: unknown typed array ${String(name)}`,
        );
      }
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
      throw new CheckpointCorruptError(
        undefined,
        `it does not decode: unknown codec tag ${JSON.stringify(node[TAG])}`,
      );
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

/** Malformed input, whatever broke on it (JSON.parse, BigInt, a missing array), as one typed error. */
function undecodable(error: unknown): CheckpointCorruptError {
  if (error instanceof CheckpointCorruptError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new CheckpointCorruptError(undefined, `it does not decode: ${reason}`, { cause: error });
}

/**
 * Decodes canonical JSON text made by {@link encode}. Throws {@link CheckpointCorruptError}
 * (`CAIRN_CORRUPT`), with the original error as `cause`, when the text is not such text.
 */
export function decode(text: string): unknown {
  try {
    const tree: unknown = JSON.parse(text);
    // Most data has no tagged values: skip the revive walk when the tag never occurs.
    return text.includes(`"${TAG}"`) ? revive(tree) : tree;
  } catch (error) {
    throw undecodable(error);
  }
}

/** Decodes a parsed JSON tree made by {@link encode}; the tree is revived in place. */
export function decodeTree(tree: unknown): unknown {
  try {
    return revive(tree);
  } catch (error) {
    throw undecodable(error);
  }
}
