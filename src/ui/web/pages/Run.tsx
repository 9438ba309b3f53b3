import { useMemo, useState } from "preact/hooks";
import { seg } from "../api";
import { Card } from "../components/Card";
import { ErrorBanner } from "../components/ErrorBanner";
import { Gantt } from "../components/Gantt";
import { GraphImage } from "../components/GraphImage";
import { StatusBadge } from "../components/StatusBadge";
import { fmtBytes, fmtTime } from "../format";
import { useFetch } from "../hooks";
import { useLiveRefresh } from "../live";
import { href } from "../router";
import type { RunDetail, Session } from "../types";
import { RunActions } from "./RunActions";
import { ChainList, ProblemsList, RecoveryPanel, StageTable } from "./RunParts";

/** One run: summary, graphs, stages, Gantt timeline, checkpoint chain, recovery, problems. */
/** Checkpoints the one check found invalid (quarantined ones are handled) plus unreadable entries. */
function invalidOf(chain: readonly { check: string }[]): number {
  return chain.filter((c) => c.check === "invalid" || c.check === "corrupt").length;
}

export function RunPage({ id, session }: { id: string; session: Session }) {
  const run = useFetch<RunDetail>(`/api/runs/${seg(id)}`);
  const [picked, setGraph] = useState<"stages" | "checkpoints">("stages");
  // Bumped on live changes so the graph image is fetched again.
  const [version, setVersion] = useState(0);
  useLiveRefresh(
    () => {
      run.reload();
      setVersion((v) => v + 1);
    },
    (c) => c.pipelineId === id,
  );
  const d = run.data;
  // A run without stages (a LangGraph thread) has no stage graph to draw: its checkpoints are the graph.
  const noStages = d !== undefined && d.stages.length === 0;
  const graph = noStages ? "checkpoints" : picked;
  const stageOrder = useMemo(() => d?.stages.map((s) => s.name) ?? [], [d]);
  return (
    <section>
      <p class="crumbs">
        <a href={href(["runs"])}>Runs</a> ›{" "}
        {d && <a href={href(["runs"], { name: d.summary.pipelineName })}>{d.summary.pipelineName}</a>}
      </p>
      <div class="title-row">
        <h2 class="mono" data-testid="run-id">
          {id}
        </h2>
        {d && <StatusBadge status={d.summary.status} testid="run-status" />}
        {d?.summary.encrypted && (
          <span class="badge s-encrypted" data-testid="run-encrypted">
            encrypted
          </span>
        )}
      </div>
      <ErrorBanner error={run.error} />
      {!d && !run.error && <p class="muted">loading…</p>}
      {d && (
        <>
          <dl class="cards" data-testid="run-summary">
            <Card label="Pipeline" value={d.summary.pipelineName} wide />
            <Card label="Stages" value={`${d.summary.stagesDone}/${d.summary.stagesTotal}`} />
            <Card label="Checkpoints" value={String(d.summary.checkpoints)} />
            <Card
              label="Invalid"
              value={String(invalidOf(d.chain))}
              warn={invalidOf(d.chain) > 0}
              testid="run-invalid"
            />
            <Card label="Size" value={fmtBytes(d.summary.sizeBytes)} />
            <Card label="Resumes" value={String(d.summary.resumeCount)} />
            <Card label="Started" value={fmtTime(d.summary.firstTimestamp)} />
            <Card label="Last update" value={fmtTime(d.summary.lastUpdate)} />
            {d.summary.thread && (
              <Card label="Thread" value={`${d.summary.thread.threadId} ${d.summary.thread.namespace}`} />
            )}
          </dl>
          {session.allowActions && <RunActions pipelineId={id} onDone={run.reload} />}

          <h3>Problems</h3>
          <ProblemsList problems={d.problems} />

          <h3>Pipeline graph</h3>
          <div class="tabs" role="tablist">
            {(["stages", "checkpoints"] as const).map((k) => (
              <button
                key={k}
                type="button"
                role="tab"
                aria-selected={graph === k}
                class={graph === k ? "tab active" : "tab"}
                data-testid={`graph-tab-${k}`}
                disabled={k === "stages" && noStages}
                onClick={() => setGraph(k)}
              >
                {k === "stages" ? "Stages" : "Checkpoints"}
              </button>
            ))}
          </div>
          <div class="graph">
            <GraphImage
              src={`/api/runs/${seg(id)}/graph.svg?kind=${graph}${version ? `&v=${version}` : ""}`}
              alt={`${graph} graph of ${id}`}
              kind={graph}
            />
          </div>

          <h3>Stages</h3>
          <StageTable stages={d.stages} />

          <h3>Timeline</h3>
          <Gantt timeline={d.timeline} stageOrder={stageOrder} />

          <h3>Recovery</h3>
          <RecoveryPanel recovery={d.recovery} resumeCommand={d.resumeCommand} />

          <h3>Checkpoint chain</h3>
          <ChainList chain={d.chain} />
        </>
      )}
    </section>
  );
}
