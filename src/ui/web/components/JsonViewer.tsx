import { useState } from "preact/hooks";
import { type ApiError, getJson } from "../api";
import { fmtBytes } from "../format";
import { asApiError } from "../hooks";
import { ErrorBanner } from "./ErrorBanner";

/** Children rendered per "show more" step: a 100,000-key object never renders all at once. */
const CHUNK = 100;
/** Strings longer than this are cut until the user asks for all of them. */
const LONG_STRING = 300;

type Key = string | number;

/** A one-line preview of a small collapsed object or array of scalars: `{"n": 3, "ok": true}`. */
function inlinePreview(value: object, count: number): string {
  if (count === 0 || count > 8) return "";
  const entries = Array.isArray(value) ? value.map((v) => [undefined, v] as const) : Object.entries(value);
  if (entries.some(([, v]) => v !== null && typeof v === "object")) return "";
  const text = entries
    .map(([k, v]) => (k === undefined ? "" : `${JSON.stringify(k)}: `) + JSON.stringify(v))
    .join(", ");
  const wrapped = Array.isArray(value) ? `[${text}]` : `{${text}}`;
  return wrapped.length > 90 ? `${wrapped.slice(0, 89)}…` : wrapped;
}

function Scalar({ value }: { value: unknown }) {
  const [full, setFull] = useState(false);
  if (typeof value === "string") {
    const cut = !full && value.length > LONG_STRING;
    return (
      <span class="jv jstr">
        "{cut ? value.slice(0, LONG_STRING) : value}"
        {cut && (
          <button type="button" class="link-button" onClick={() => setFull(true)}>
            … show all {value.length} chars
          </button>
        )}
      </span>
    );
  }
  if (value === null) return <span class="jv jnull">null</span>;
  if (typeof value === "number") return <span class="jv jnum">{String(value)}</span>;
  if (typeof value === "boolean") return <span class="jv jbool">{String(value)}</span>;
  return <span class="jv">{String(value)}</span>;
}

function Label({ name, root }: { name: Key | undefined; root?: boolean }) {
  if (name === undefined) return null;
  // Keys inside the value are quoted like JSON; a root's name ("state") is a caption.
  const text = typeof name === "number" || root ? `${name}` : JSON.stringify(name);
  return <span class="jkey">{text}: </span>;
}

/** One node of the tree; its children exist in the DOM only while it is expanded. */
export function JsonNode({
  name,
  value,
  open = false,
  root = false,
}: {
  name?: Key;
  value: unknown;
  open?: boolean;
  root?: boolean;
}) {
  const [expanded, setExpanded] = useState(open);
  const [shown, setShown] = useState(CHUNK);
  if (value === null || typeof value !== "object") {
    return (
      <div class="jrow">
        <Label name={name} root={root} />
        <Scalar value={value} />
      </div>
    );
  }
  const isArray = Array.isArray(value);
  // Keys are listed only once expanded: a collapsed 1 MB object costs nothing to show.
  const keys: Key[] = expanded ? (isArray ? [...value.keys()] : Object.keys(value)) : [];
  const count = isArray ? value.length : expanded ? keys.length : Object.keys(value).length;
  const summary = isArray ? `[${count}]` : `{${count} ${count === 1 ? "key" : "keys"}}`;
  const peek = expanded ? "" : inlinePreview(value, count);
  return (
    <div class="jnode">
      <button
        type="button"
        class="jtoggle"
        aria-expanded={expanded}
        data-testid="json-toggle"
        onClick={() => setExpanded(!expanded)}
      >
        <span class="caret">{expanded ? "▾" : "▸"}</span>
        <Label name={name} root={root} />
        <span class="jsummary">{summary}</span>
        {peek && <span class="jpeek"> {peek}</span>}
      </button>
      {expanded && (
        <div class="jchildren">
          {keys.slice(0, shown).map((k) => (
            <JsonNode key={k} name={k} value={(value as Record<Key, unknown>)[k]} />
          ))}
          {keys.length > shown && (
            <button
              type="button"
              class="link-button show-more"
              data-testid="json-more"
              onClick={() => setShown(shown + CHUNK)}
            >
              show {Math.min(CHUNK, keys.length - shown)} more ({keys.length - shown} hidden)
            </button>
          )}
        </div>
      )}
    </div>
  );
}

/** A value fetched from `url` only when first expanded (state or an output over 64 KB). */
export function LazyJson({ name, url, size }: { name: string; url: string; size?: number }) {
  const [expanded, setExpanded] = useState(false);
  const [value, setValue] = useState<{ v: unknown } | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const toggle = (): void => {
    const next = !expanded;
    setExpanded(next);
    if (next && !value && !loading) {
      setLoading(true);
      setError(undefined);
      getJson<unknown>(url).then(
        (v) => {
          setValue({ v });
          setLoading(false);
        },
        (e: unknown) => {
          setError(asApiError(e));
          setLoading(false);
        },
      );
    }
  };
  return (
    <div class="jnode" data-testid="lazy-json" data-name={name}>
      <button
        type="button"
        class="jtoggle"
        aria-expanded={expanded}
        data-testid="json-toggle"
        onClick={toggle}
      >
        <span class="caret">{expanded ? "▾" : "▸"}</span>
        <span class="jkey">{name}</span>
        {size !== undefined && <span class="jsummary"> ({fmtBytes(size)})</span>}
        {loading && <span class="muted"> loading…</span>}
      </button>
      {expanded && (
        <div class="jchildren">
          <ErrorBanner error={error} />
          {value && <JsonNode value={value.v} open />}
        </div>
      )}
    </div>
  );
}

/** A collapsible viewer for an inline value. */
export function JsonViewer({ value, name, open = true }: { value: unknown; name?: string; open?: boolean }) {
  return (
    <div class="json" data-testid="json-viewer">
      <JsonNode {...(name !== undefined ? { name } : {})} value={value} open={open} root />
    </div>
  );
}
