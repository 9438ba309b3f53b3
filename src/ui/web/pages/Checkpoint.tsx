import { postJson, seg } from "../api";
import { ActionBar, type ActionSpec } from "../components/Actions";
import { ErrorBanner } from "../components/ErrorBanner";
import { JsonViewer, LazyJson } from "../components/JsonViewer";
import { StatusBadge } from "../components/StatusBadge";
import { fmtBytes, fmtTime, preview } from "../format";
import { useFetch } from "../hooks";
import { useLiveRefresh } from "../live";
import { href } from "../router";
import type { CheckpointDetail, QuarantineResult, Session } from "../types";
import { QuarantineSummary } from "./RunActions";

const TIME_KEYS = new Set(["timestamp", "createdAt", "updatedAt"]);

function MetaValue({ k, v }: { k: string; v: unknown }) {
  if (k === "pipelineId" && typeof v === "string") return <a href={href(["runs", v])}>{v}</a>;
  if (k === "parentCheckpointId" && typeof v === "string") return <a href={href(["checkpoints", v])}>{v}</a>;
  if (k === "status" && typeof v === "string") return <StatusBadge status={v} testid="checkpoint-status" />;
  if (k === "dataSize" && typeof v === "number") return <>{fmtBytes(v)}</>;
  if (TIME_KEYS.has(k) && typeof v === "string") return <>{`${fmtTime(v)} (${v})`}</>;
  return <>{typeof v === "string" ? v : preview(v)}</>;
}

/** The text of one validation problem, whatever its shape ({kind, message} or {code, message}). */
function problemText(p: unknown): { code: string; message: string } {
  if (p && typeof p === "object") {
    const o = p as Record<string, unknown>;
    const code = String(o.code ?? o.kind ?? "problem");
    return { code, message: typeof o.message === "string" ? o.message : preview(p) };
  }
  return { code: "problem", message: String(p) };
}

/** One checkpoint: metadata, stages, provenance, validation, state and outputs, export. */
export function CheckpointPage({ cid, session }: { cid: string; session: Session }) {
  const cp = useFetch<CheckpointDetail>(`/api/checkpoints/${seg(cid)}`);
  const d = cp.data;
  const meta = d?.metadata ?? undefined;
  const runId = typeof meta?.pipelineId === "string" ? meta.pipelineId : undefined;
  useLiveRefresh(cp.reload, (c) => c.pipelineId === runId);
  const parent = typeof meta?.parentCheckpointId === "string" ? meta.parentCheckpointId : undefined;
  const actions: ActionSpec[] = [
    {
      id: "quarantine",
      label: "Quarantine",
      title: "Quarantine this checkpoint?",
      danger: true,
      body: (
        <p>
          Runs <code>cairn repair</code> without <code>--force</code> on {cid}: if it fails its check, a
          backup is written and it is marked expired so no resume uses it. A valid checkpoint is left alone.
          Recorded in the audit trail.
        </p>
      ),
      run: async () => (
        <QuarantineSummary
          r={await postJson<QuarantineResult>("/api/actions/quarantine", { checkpointId: cid })}
        />
      ),
    },
  ];
  return (
    <section>
      <p class="crumbs">
        <a href={href(["runs"])}>Runs</a>
        {runId && (
          <>
            {" › "}
            <a href={href(["runs", runId])}>{runId}</a>
          </>
        )}
      </p>
      <h2 class="mono" data-testid="checkpoint-id">
        {cid}
      </h2>
      <ErrorBanner error={cp.error} />
      {!d && !cp.error && <p class="muted">loading…</p>}
      {d && (
        <>
          <div class="toolbar">
            {d.exportUrl ? (
              <a class="button" href={d.exportUrl} download data-testid="export-link">
                Download export file
              </a>
            ) : (
              <span class="muted" data-testid="no-export">
                {d.encrypted
                  ? "No export: encrypted, and the server was not given the key."
                  : "No export: the checkpoint does not verify."}
              </span>
            )}
            {parent && (
              <a class="button" href={href(["compare"], { a: parent, b: cid })} data-testid="compare-parent">
                Compare with parent
              </a>
            )}
          </div>
          {session.allowActions && <ActionBar actions={actions} onDone={cp.reload} />}

          <h3>Validation</h3>
          <div data-testid="validation" data-status={d.validation.status}>
            <StatusBadge status={d.validation.status} testid="validation-status" />
            {d.validation.problems.length > 0 && (
              <ul class="problems">
                {d.validation.problems.map((p, i) => {
                  const t = problemText(p);
                  return (
                    <li key={i} data-testid="problem" data-code={t.code}>
                      <span class="badge s-corrupt">{t.code}</span> {t.message}
                    </li>
                  );
                })}
              </ul>
            )}
          </div>

          <h3>Metadata</h3>
          {!meta && <p class="error-text">The metadata does not parse.</p>}
          <table class="kv" data-testid="metadata">
            <tbody>
              {Object.entries(meta ?? {}).map(([k, v]) => (
                <tr key={k}>
                  <th>{k}</th>
                  <td class="mono">
                    <MetaValue k={k} v={v} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>

          <div class="two-col">
            <div>
              <h3>Completed stages</h3>
              <StageList names={d.completedStages} testid="completed-stages" />
            </div>
            <div>
              <h3>Pending stages</h3>
              <StageList names={d.pendingStages} testid="pending-stages" />
            </div>
          </div>

          <h3>Provenance</h3>
          <Provenance value={d.provenance} />

          <h3>State and outputs</h3>
          {d.encrypted ? (
            <p class="encrypted" data-testid="encrypted">
              encrypted (no key given to the server)
            </p>
          ) : !d.state && d.outputs.every((o) => !o.url) ? (
            <p class="muted" data-testid="no-values">
              Not shown: the checkpoint does not verify, so its values cannot be trusted.
            </p>
          ) : (
            <div class="json" data-testid="values">
              {d.state && "inline" in d.state && (
                <JsonViewer name="state" value={d.state.inline} open={false} />
              )}
              {d.state && "lazy" in d.state && (
                <LazyJson name="state" url={d.state.url} size={d.state.size} />
              )}
              {d.outputs.map((o) =>
                o.url ? (
                  <LazyJson
                    key={o.name}
                    name={`output: ${o.name}`}
                    url={o.url}
                    {...(o.size === null ? {} : { size: o.size })}
                  />
                ) : (
                  <div key={o.name} class="jrow muted">
                    output: {o.name} — cannot be served (does not verify)
                  </div>
                ),
              )}
              {d.outputs.length === 0 && <p class="muted">No stage outputs.</p>}
            </div>
          )}
        </>
      )}
    </section>
  );
}

function StageList({ names, testid }: { names: string[] | null; testid: string }) {
  if (names === null) return <p class="muted">unknown (the checkpoint does not verify)</p>;
  if (names.length === 0) return <p class="muted">none</p>;
  return (
    <ol class="stage-list mono" data-testid={testid}>
      {names.map((n) => (
        <li key={n}>{n}</li>
      ))}
    </ol>
  );
}

function Provenance({ value }: { value: unknown }) {
  if (value === null || value === undefined)
    return (
      <p class="muted" data-testid="provenance">
        unknown (not verified)
      </p>
    );
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.every(([, v]) => typeof v === "string"))
      return (
        <table class="kv" data-testid="provenance">
          <tbody>
            {entries.map(([k, v]) => (
              <tr key={k}>
                <th class="mono">{k}</th>
                <td class="mono hash">{String(v)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      );
  }
  return (
    <div data-testid="provenance">
      <JsonViewer value={value} />
    </div>
  );
}
