import { useState } from "preact/hooks";
import { CopyButton } from "../components/CopyButton";
import { StatusBadge } from "../components/StatusBadge";
import { fmtBytes, fmtDuration, fmtTime } from "../format";
import { href, navigate } from "../router";
import type { ChainNode, Problem, Recovery, StageRow } from "../types";

/** Every stage with its status, duration, attempts and error. */
export function StageTable({ stages }: { stages: StageRow[] }) {
  if (stages.length === 0)
    return (
      <p class="muted" data-testid="stages-table">
        No stages recorded for this run (a LangGraph thread has nodes, not stages: see the chain).
      </p>
    );
  return (
    <table class="grid" data-testid="stages-table">
      <thead>
        <tr>
          <th class="num">#</th>
          <th>Stage</th>
          <th>Status</th>
          <th class="num">Duration</th>
          <th class="num">Attempts</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        {stages.map((s) => (
          <tr key={s.name} data-testid="stage-row" data-stage={s.name} data-status={s.status}>
            <td class="num">{s.index}</td>
            <td class="mono">{s.name}</td>
            <td>
              <StatusBadge status={s.status} />
            </td>
            <td class="num">{fmtDuration(s.durationMs)}</td>
            <td class="num">{s.attempts}</td>
            <td class="error-text">{s.error ?? ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const CHAIN_CHUNK = 200;

/** The run's checkpoints in order, with their check result; pick two to compare. */
export function ChainList({ chain }: { chain: ChainNode[] }) {
  const [picked, setPicked] = useState<string[]>([]);
  // A run with thousands of checkpoints renders them a chunk at a time.
  const [shown, setShown] = useState(CHAIN_CHUNK);
  const toggle = (id: string): void =>
    setPicked((p) => (p.includes(id) ? p.filter((x) => x !== id) : [...p, id].slice(-2)));
  const seqById = new Map(chain.flatMap((c) => (c.checkpointId ? [[c.checkpointId, c.sequence ?? 0]] : [])));
  // A is the older checkpoint, B the newer: the diff then reads as "what happened since".
  const seqOf = (id: string): number => chain.find((c) => c.checkpointId === id)?.sequence ?? 0;
  const [a, b] = [...picked].sort((x, y) => seqOf(x) - seqOf(y));
  return (
    <div>
      <div class="toolbar">
        <button
          type="button"
          disabled={!a || !b}
          data-testid="compare-picked"
          onClick={() => a && b && navigate(href(["compare"], { a, b }))}
        >
          Compare selected ({picked.length}/2)
        </button>
        <span class="muted small">Tick two checkpoints to compare them.</span>
      </div>
      <table class="grid" data-testid="chain">
        <thead>
          <tr>
            <th />
            <th class="num">Seq</th>
            <th>Checkpoint</th>
            <th>Stage</th>
            <th>Status</th>
            <th>Check</th>
            <th class="num">Size</th>
            <th>Time</th>
          </tr>
        </thead>
        <tbody>
          {chain.slice(0, shown).map((c, i) => {
            const id = c.checkpointId;
            // A tree (a forked thread) shows where each branch starts: the parent, when it is not
            // the row just above.
            const above = i > 0 ? chain[i - 1]?.checkpointId : null;
            const parentSeq = c.parentId && c.parentId !== above ? seqById.get(c.parentId) : undefined;
            return (
              <tr
                key={id ?? `unknown-${i}`}
                data-testid="chain-row"
                data-checkpoint-id={id ?? ""}
                data-check={c.check}
              >
                <td>
                  {id && (
                    <input
                      type="checkbox"
                      aria-label={`select ${id}`}
                      checked={picked.includes(id)}
                      onChange={() => toggle(id)}
                      data-testid="chain-pick"
                    />
                  )}
                </td>
                <td class="num">{c.sequence ?? "?"}</td>
                <td class="mono ids">
                  {id ? (
                    <a href={href(["checkpoints", id])} title={c.parentId ? `parent ${c.parentId}` : "first"}>
                      {id}
                    </a>
                  ) : (
                    <span class="muted">(unreadable entry)</span>
                  )}
                  {parentSeq !== undefined && (
                    <span class="muted small" data-testid="chain-branch">
                      {" "}
                      ← from #{parentSeq}
                    </span>
                  )}
                  {c.problems.length > 0 && (
                    <ul class="problems-inline">
                      {c.problems.map((p) => (
                        <li key={p}>{p}</li>
                      ))}
                    </ul>
                  )}
                </td>
                <td class="mono">{c.stage ?? "?"}</td>
                <td>{c.status && <StatusBadge status={c.status} />}</td>
                <td>
                  <StatusBadge status={c.check} testid="check" />
                </td>
                <td class="num nowrap">{fmtBytes(c.dataSize)}</td>
                <td class="nowrap">{fmtTime(c.timestamp)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {chain.length > shown && (
        <div class="pager">
          <button type="button" onClick={() => setShown(shown + CHAIN_CHUNK)} data-testid="chain-more">
            Show {Math.min(CHAIN_CHUNK, chain.length - shown)} more ({chain.length - shown} hidden)
          </button>
        </div>
      )}
    </div>
  );
}

/** The recommended recovery point and the plan of what a resume does with each stage. */
export function RecoveryPanel({
  recovery,
  resumeCommand,
}: {
  recovery: Recovery;
  resumeCommand: string | null;
}) {
  return (
    <div data-testid="recovery">
      <p>
        Recovery point:{" "}
        {recovery.checkpointId ? (
          <>
            <a class="mono" href={href(["checkpoints", recovery.checkpointId])} data-testid="recovery-point">
              {recovery.checkpointId}
            </a>{" "}
            (after stage <span class="mono">{recovery.stage}</span>)
          </>
        ) : (
          <span class="muted">none: a resume starts from the beginning</span>
        )}
      </p>
      {(recovery.advice ?? []).length > 0 && (
        <ul class="advice" data-testid="advice">
          {(recovery.advice ?? []).map((a) => (
            <li key={a}>{a}</li>
          ))}
        </ul>
      )}
      {recovery.plan.length > 0 && (
        <table class="grid" data-testid="recovery-plan">
          <thead>
            <tr>
              <th>Stage</th>
              <th>Action</th>
              <th>Why</th>
            </tr>
          </thead>
          <tbody>
            {recovery.plan.map((p) => (
              <tr key={p.stage}>
                <td class="mono">{p.stage}</td>
                <td>
                  <span class={`badge plan-${p.action.replace(/[^a-z_]/gi, "")}`}>{p.action}</span>
                </td>
                <td>{p.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h4>Resume command</h4>
      {resumeCommand ? (
        <div class="command">
          <code data-testid="resume-command">{resumeCommand}</code>
          <CopyButton text={resumeCommand} testid="copy-resume" />
        </div>
      ) : (
        <p class="muted" data-testid="no-resume">
          Nothing to resume.
        </p>
      )}
    </div>
  );
}

/** Problems found in the run's checkpoints. */
export function ProblemsList({ problems }: { problems: Problem[] }) {
  if (problems.length === 0)
    return (
      <p class="ok-text" data-testid="problems" data-count="0">
        No problems found.
      </p>
    );
  return (
    <ul class="problems" data-testid="problems" data-count={problems.length}>
      {problems.map((p, i) => (
        <li key={`${p.checkpointId}-${p.code}-${i}`} data-testid="problem" data-code={p.code}>
          <span class="badge s-corrupt">{p.code}</span> {p.message}
          {p.checkpointId && (
            <>
              {" "}
              <a class="mono small" href={href(["checkpoints", p.checkpointId])}>
                {p.checkpointId}
              </a>
            </>
          )}
        </li>
      ))}
    </ul>
  );
}
