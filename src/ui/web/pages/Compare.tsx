import { useEffect, useState } from "preact/hooks";
import { ErrorBanner } from "../components/ErrorBanner";
import { fmtBytes, fmtTime, preview } from "../format";
import { useFetch } from "../hooks";
import { href, navigate } from "../router";
import type { CompareResult, CompareSide, Diff } from "../types";

/** One side as rows: its id, whether it verifies (and why not), then its metadata. */
function flat(side: CompareSide): Record<string, unknown> {
  return {
    checkpointId: side.checkpointId,
    verified: side.verified ? "yes" : `no: ${side.problems.join("; ") || "does not verify"}`,
    ...(side.metadata ?? { metadata: "does not parse" }),
  };
}

/** A diff path as text: ["a", 0, "b"] -> "a[0].b". */
export function pathText(path: (string | number)[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out === "" ? p : `.${p}`;
  return out === "" ? "(root)" : out;
}

function show(key: string, v: unknown): string {
  if (v === undefined || v === null) return "–";
  if (key === "dataSize" && typeof v === "number") return fmtBytes(v);
  if (typeof v === "string") return /^\d{4}-\d\d-\d\dT/.test(v) ? fmtTime(v) : v;
  return preview(v);
}

/** Two checkpoints side by side with the structural diff of their state and outputs. */
export function ComparePage({ query }: { query: URLSearchParams }) {
  const a = query.get("a") ?? "";
  const b = query.get("b") ?? "";
  const [inA, setInA] = useState(a);
  const [inB, setInB] = useState(b);
  useEffect(() => {
    setInA(a);
    setInB(b);
  }, [a, b]);
  const url = a && b ? `/api/compare?${new URLSearchParams({ a, b })}` : null;
  const cmp = useFetch<CompareResult>(url);
  const d = cmp.data;
  const fa = d ? flat(d.a) : {};
  const fb = d ? flat(d.b) : {};
  const keys = [...new Set([...Object.keys(fa), ...Object.keys(fb)])];
  return (
    <section>
      <h2>Compare checkpoints</h2>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(href(["compare"], { a: inA.trim(), b: inB.trim() }));
        }}
      >
        <label>
          A{" "}
          <input
            class="wide mono"
            value={inA}
            onInput={(e) => setInA(e.currentTarget.value)}
            data-testid="compare-a"
          />
        </label>
        <label>
          B{" "}
          <input
            class="wide mono"
            value={inB}
            onInput={(e) => setInB(e.currentTarget.value)}
            data-testid="compare-b"
          />
        </label>
        <button type="submit">Compare</button>
      </form>
      {!url && <p class="muted">Pick two checkpoints on a run page, or paste two checkpoint ids.</p>}
      <ErrorBanner error={cmp.error} />
      {url && !d && !cmp.error && <p class="muted">loading…</p>}
      {d && (
        <>
          <table class="grid side-by-side" data-testid="compare-meta">
            <thead>
              <tr>
                <th />
                <th>
                  A · <a href={href(["checkpoints", a])}>open</a>
                </th>
                <th>
                  B · <a href={href(["checkpoints", b])}>open</a>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => {
                const x = show(k, fa[k]);
                const y = show(k, fb[k]);
                return (
                  <tr key={k} class={x === y ? "" : "differs"}>
                    <th>{k}</th>
                    <td class="mono">{x}</td>
                    <td class="mono">{y}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {(d.stages.added.length > 0 || d.stages.removed.length > 0) && (
            <p data-testid="stage-diff">
              Completed stages:{" "}
              {d.stages.added.length > 0 && <span class="kind-added">+ {d.stages.added.join(", ")}</span>}{" "}
              {d.stages.removed.length > 0 && (
                <span class="kind-removed">− {d.stages.removed.join(", ")}</span>
              )}
            </p>
          )}
          {(d.notes ?? []).length > 0 && (
            <ul class="notes" data-testid="compare-notes">
              {(d.notes ?? []).map((n) => (
                <li key={n}>{n}</li>
              ))}
            </ul>
          )}
          <h3>State</h3>
          <DiffTable diffs={d.state} section="state" />
          {d.stateTruncated && (
            <p class="muted" data-testid="state-truncated">
              Only the first {d.state.length} differences are listed.
            </p>
          )}
          <h3>Outputs</h3>
          <DiffTable diffs={d.outputs} section="outputs" />
        </>
      )}
    </section>
  );
}

function DiffTable({ diffs, section }: { diffs: Diff[]; section: string }) {
  if (diffs.length === 0)
    return (
      <p class="muted" data-testid={`no-diff-${section}`}>
        No differences.
      </p>
    );
  return (
    <table class="grid diff" data-testid={`diff-${section}`}>
      <thead>
        <tr>
          <th>Path</th>
          <th>Change</th>
          <th>Before (A)</th>
          <th>After (B)</th>
        </tr>
      </thead>
      <tbody>
        {diffs.map((x) => {
          const p = pathText(x.path);
          return (
            <tr
              key={`${x.kind}:${p}`}
              data-testid="diff-row"
              data-path={p}
              data-kind={x.kind}
              data-section={section}
            >
              <td class="mono">{p}</td>
              <td>
                <span class={`badge kind-${x.kind}`}>{x.kind}</span>
              </td>
              <td class="mono val">{"before" in x ? preview(x.before) : ""}</td>
              <td class="mono val">{"after" in x ? preview(x.after) : ""}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
