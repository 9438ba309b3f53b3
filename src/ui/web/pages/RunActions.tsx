import { postJson, postRaw, saveAttachment } from "../api";
import { ActionBar, type ActionSpec } from "../components/Actions";
import { href } from "../router";
import type { QuarantineResult, ValidateResult } from "../types";

/** What a quarantine did, one line per checkpoint. */
export function QuarantineSummary({ r }: { r: QuarantineResult }) {
  return (
    <div>
      <p>
        {r.quarantined.length === 0
          ? "Nothing quarantined: every checkpoint passed its check."
          : `Quarantined ${r.quarantined.length} checkpoint(s).`}
      </p>
      <ul>
        {r.reports.map((rep) => (
          <li key={rep.checkpointId}>
            <a class="mono" href={href(["checkpoints", rep.checkpointId])}>
              {rep.checkpointId}
            </a>
            : {rep.status}
            {rep.actions.length > 0 ? ` — ${rep.actions.join(" ")}` : ""}
            {rep.backup ? ` (backup ${rep.backup})` : ""}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** Validate, quarantine and export for one run (shown only with --allow-actions). */
export function RunActions({ pipelineId, onDone }: { pipelineId: string; onDone: () => void }) {
  const actions: ActionSpec[] = [
    {
      id: "validate",
      label: "Validate",
      title: "Validate this run?",
      body: <p>Checks every checkpoint of {pipelineId} (checksums, outputs, chain). Nothing is changed.</p>,
      run: async () => {
        const r = await postJson<ValidateResult>("/api/actions/validate", { pipelineId });
        return (
          <p>
            Validated {r.checkpoints} checkpoint(s): {r.invalid === 0 ? "all valid" : `${r.invalid} invalid`}{" "}
            (status {r.status}).
            {r.problems.map((p) => (
              <span key={`${p.checkpointId}${p.code}`} class="block">
                <span class="badge s-corrupt">{p.code}</span> {p.message}
              </span>
            ))}
          </p>
        );
      },
    },
    {
      id: "quarantine",
      label: "Quarantine damaged",
      title: "Quarantine the damaged checkpoints of this run?",
      danger: true,
      body: (
        <p>
          Runs <code>cairn repair</code> without <code>--force</code> on every checkpoint of {pipelineId} that
          fails its check: a backup is written first, then the checkpoint is marked expired so no resume uses
          it. Nothing is re-sealed. This is recorded in the audit trail.
        </p>
      ),
      run: async () => (
        <QuarantineSummary r={await postJson<QuarantineResult>("/api/actions/quarantine", { pipelineId })} />
      ),
    },
    {
      id: "export",
      label: "Export run",
      title: "Export this run?",
      body: (
        <p>
          Downloads every checkpoint of {pipelineId} as one file. The export is recorded in the audit trail.
        </p>
      ),
      run: async () => {
        const name = await saveAttachment(
          await postRaw("/api/actions/export", { pipelineId }),
          `${pipelineId}.json`,
        );
        return <p>Downloaded {name}.</p>;
      },
    },
  ];
  return <ActionBar actions={actions} onDone={onDone} />;
}
