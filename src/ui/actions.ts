/**
 * The console's actions (mounted only with `--allow-actions`): validate, quarantine, retention
 * cleanup with a preview, export. Each is the library's own operation, with the request body
 * checked strictly, and each is recorded in the audit trail: "requested" before it acts, then
 * "done" or "failed" (with the error's code) after.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointNotFoundError, InvalidArgumentError } from "../core/errors.js";
import { assertValidName } from "../core/ids.js";
import { type RepairReport, repairCheckpoint } from "../debug/repair.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { AuditEntry, AuditLog } from "./audit.js";
import {
  type CleanupOutcome,
  type CleanupRequest,
  type CleanupSelection,
  executeCleanup,
  type SelectedRun,
  selectCleanup,
} from "./cleanup-plan.js";
import { checkBody } from "./request-body.js";

/** Who asks: the OS user the console runs as and the request's remote address. */
export interface Who {
  user: string;
  client: string;
}

/** What the actions work with. */
export interface ActionContext {
  manager: CheckpointManager;
  audit: AuditLog;
  storeHint: string;
  /** Where quarantine backups go; default `cairn repair`'s (`.cairn/backups`). */
  backupDir?: string;
  /** The clock of cleanup previews (tests); default the system clock. */
  now?: () => Date;
}

/** A problem found, as the console shows it. */
export interface Problem {
  checkpointId: string | null;
  code: string;
  message: string;
}

/** What `validate` found. */
export interface ValidateResult {
  pipelineId: string;
  /** `valid`; `invalid` (a problem not handled yet); `quarantined` (every invalid one is). */
  status: "valid" | "invalid" | "quarantined";
  checkpoints: number;
  invalid: number;
  /** Encrypted under a key the console was not given: not verified. */
  sealed: number;
  problems: Problem[];
}

/** What `quarantine` did: the checkpoints quarantined (or, unparseable, removed) and each repair's report. */
export interface QuarantineResult {
  quarantined: string[];
  reports: RepairReport[];
}

/** A cleanup preview: what executing `previewId` deletes (within 10 minutes). */
export interface CleanupPreview extends CleanupSelection {
  previewId: string;
  expiresAt: string;
  /** Checkpoints that go, over every run. */
  checkpoints: number;
}

/** The console's actions; the lead mounts each as a POST route. */
export interface Actions {
  validate(body: unknown, who: Who): Promise<ValidateResult>;
  quarantine(body: unknown, who: Who): Promise<QuarantineResult>;
  cleanupPreview(body: unknown, who: Who): Promise<CleanupPreview>;
  cleanup(body: unknown, who: Who): Promise<CleanupOutcome & { previewId: string }>;
  exportRun(body: unknown, who: Who): Promise<{ filename: string; text: string }>;
}

/** How long a cleanup preview can be executed. */
export const PREVIEW_TTL_MS = 10 * 60_000;

/** Statuses of a repair that changed the store. */
const ACTED = new Set(["quarantined", "removed"]);
/** Dry-run statuses after which a repair without force only quarantines or removes. */
const WOULD_ACT = new Set(["would-quarantine", "would-remove"]);

type Target = AuditEntry["target"];

interface StoredPreview {
  request: CleanupRequest;
  at: Date;
  selection: CleanupSelection;
  expires: number;
}

/** The code and message of an error, for the audit trail. */
function failure(error: unknown): Record<string, unknown> {
  const code = (error as { code?: unknown } | undefined)?.code;
  return {
    code: typeof code === "string" ? code : "CAIRN_INTERNAL",
    message: error instanceof Error ? error.message : String(error),
  };
}

/**
 * Runs `work` between a "requested" and a "done" (with `summary` of the result) or "failed" (with
 * the error's code and message) entry of the audit trail; nothing runs if "requested" cannot be
 * written. The console's audited reads (a checkpoint export download) use it too.
 */
export async function withAudit<T>(
  audit: AuditLog,
  who: Who,
  action: string,
  target: Target,
  work: () => Promise<T>,
  summary: (result: T) => Record<string, unknown> = () => ({}),
  request?: Record<string, unknown>,
): Promise<T> {
  const base = { user: who.user, client: who.client, action, target };
  await audit.append({ ...base, outcome: "requested", ...(request ? { detail: request } : {}) });
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await audit.append({ ...base, outcome: "failed", detail: failure(error) });
    throw error;
  }
  await audit.append({ ...base, outcome: "done", detail: summary(result) });
  return result;
}

/** Builds the actions over one manager and audit trail. */
export function createActions(ctx: ActionContext): Actions {
  const previews = new Map<string, StoredPreview>();
  const clock = ctx.now ?? (() => new Date());

  const audited = <T>(
    action: string,
    target: Target,
    who: Who,
    work: () => Promise<T>,
    summary: (result: T) => Record<string, unknown>,
    request?: Record<string, unknown>,
  ) => withAudit(ctx.audit, who, action, target, work, summary, request);

  async function validateRun(pipelineId: string): Promise<ValidateResult> {
    const run = await ctx.manager.validateRun(pipelineId, { sealed: "report" });
    if (run.summary.listed === 0 && run.history.length === 0)
      throw new CheckpointNotFoundError(
        pipelineId,
        `No pipeline run with id ${JSON.stringify(pipelineId)} in the store`,
      );
    const problems: Problem[] = [];
    for (const v of run.checkpoints)
      for (const p of v.problems)
        problems.push({ checkpointId: v.checkpointId, code: p.kind, message: p.message });
    for (const h of run.history)
      if (h.problem) problems.push({ checkpointId: null, code: h.kind, message: h.message });
    const { summary } = run;
    const unhandled = summary.invalid - summary.quarantined;
    const status = run.valid
      ? "valid"
      : unhandled > 0 || problems.some((p) => p.checkpointId === null)
        ? "invalid"
        : "quarantined";
    return {
      pipelineId,
      status,
      checkpoints: summary.listed - summary.gone,
      invalid: summary.invalid,
      sealed: summary.sealed,
      problems,
    };
  }

  /** `cairn repair` without force on one checkpoint, only when it would quarantine or remove it. */
  async function quarantineOne(checkpointId: string): Promise<RepairReport> {
    const options = ctx.backupDir !== undefined ? { backupDir: ctx.backupDir } : {};
    const plan = await repairCheckpoint(ctx.manager, checkpointId, { ...options, dryRun: true });
    // A valid checkpoint is left as it is: repair would rebuild provenance, which is not this action.
    if (!WOULD_ACT.has(plan.status)) return plan;
    return repairCheckpoint(ctx.manager, checkpointId, options);
  }

  async function quarantineRun(pipelineId: string): Promise<RepairReport[]> {
    const run = await ctx.manager.validateRun(pipelineId, { sealed: "report" });
    if (run.summary.listed === 0)
      throw new CheckpointNotFoundError(
        pipelineId,
        `No pipeline run with id ${JSON.stringify(pipelineId)} in the store`,
      );
    const reports: RepairReport[] = [];
    for (const v of run.checkpoints) {
      if (v.status !== "invalid" || v.quarantined || v.checkpointId === null) continue;
      reports.push(await quarantineOne(v.checkpointId));
    }
    return reports;
  }

  function takePreview(previewId: string): StoredPreview {
    const now = Date.now();
    for (const [id, p] of previews) if (p.expires <= now) previews.delete(id);
    const preview = previews.get(previewId);
    if (!preview)
      throw new CheckpointNotFoundError(
        previewId,
        `No cleanup preview ${JSON.stringify(previewId)}: it expired (10 minutes) or was used; preview again`,
      );
    // One execution per preview, whatever its outcome: a second click previews again.
    previews.delete(previewId);
    return preview;
  }

  const countOf = (runs: readonly SelectedRun[]) => runs.reduce((n, r) => n + r.checkpoints, 0);

  return {
    async validate(body, who) {
      const { pipelineId } = checkBody(body, { pipelineId: "string" }) as { pipelineId?: string };
      if (pipelineId === undefined) throw new InvalidArgumentError("validate needs pipelineId");
      assertValidName("pipelineId", pipelineId);
      return audited(
        "validate",
        { pipelineId },
        who,
        () => validateRun(pipelineId),
        (r) => ({
          status: r.status,
          checkpoints: r.checkpoints,
          invalid: r.invalid,
        }),
      );
    },

    async quarantine(body, who) {
      const b = checkBody(body, { pipelineId: "string", checkpointId: "string" }) as {
        pipelineId?: string;
        checkpointId?: string;
      };
      if ((b.pipelineId === undefined) === (b.checkpointId === undefined))
        throw new InvalidArgumentError("quarantine needs exactly one of checkpointId and pipelineId");
      const target: Target =
        b.checkpointId !== undefined
          ? { checkpointId: b.checkpointId }
          : { pipelineId: b.pipelineId as string };
      if (target.checkpointId !== undefined) assertValidName("checkpointId", target.checkpointId);
      if (target.pipelineId !== undefined) assertValidName("pipelineId", target.pipelineId);
      const work = async (): Promise<QuarantineResult> => {
        const reports =
          target.checkpointId !== undefined
            ? [await quarantineOne(target.checkpointId)]
            : await quarantineRun(target.pipelineId as string);
        return {
          quarantined: reports.filter((r) => ACTED.has(r.status)).map((r) => r.checkpointId),
          reports,
        };
      };
      return audited("quarantine", target, who, work, (r) => ({
        quarantined: r.quarantined,
        backups: r.reports.flatMap((x) => (x.backup ? [x.backup] : [])),
      }));
    },

    async cleanupPreview(body, who) {
      const b = checkBody(body, { olderThanDays: "days", keepLast: "count", completedOnly: "boolean" }) as {
        olderThanDays?: number;
        keepLast?: number;
        completedOnly?: boolean;
      };
      const request: CleanupRequest = {
        ...(b.olderThanDays !== undefined ? { olderThanDays: b.olderThanDays } : {}),
        ...(b.keepLast !== undefined ? { keepLast: b.keepLast } : {}),
        completedOnly: b.completedOnly ?? true,
      };
      if (request.olderThanDays === undefined && request.keepLast === undefined)
        throw new InvalidArgumentError("say what to clean up: olderThanDays, keepLast, or both");
      const work = async (): Promise<CleanupPreview> => {
        const at = clock();
        const selection = await selectCleanup(ctx.manager, request, at);
        const previewId = randomBytes(16).toString("base64url");
        const expires = Date.now() + PREVIEW_TTL_MS;
        previews.set(previewId, { request, at, selection, expires });
        const expiresAt = new Date(expires).toISOString();
        return { previewId, expiresAt, checkpoints: countOf(selection.runs), ...selection };
      };
      return audited(
        "cleanup-preview",
        {},
        who,
        work,
        (r) => ({ previewId: r.previewId, checkpoints: r.checkpoints, runs: r.runs.length }),
        { ...request },
      );
    },

    async cleanup(body, who) {
      const { previewId } = checkBody(body, { previewId: "string" }) as { previewId?: string };
      if (previewId === undefined) throw new InvalidArgumentError("cleanup needs the previewId of a preview");
      const work = async () => {
        const preview = takePreview(previewId);
        const outcome = await executeCleanup(
          ctx.manager,
          preview.request,
          preview.at,
          preview.selection,
          previewId,
        );
        return { previewId, ...outcome };
      };
      return audited(
        "cleanup",
        {},
        who,
        work,
        (r) => ({
          previewId,
          removedRuns: r.removedRuns,
          deletedCheckpoints: r.deletedCheckpoints.length,
          deletedOutputs: r.deletedOutputs,
        }),
        { previewId },
      );
    },

    async exportRun(body, who) {
      const b = checkBody(body, { pipelineId: "string", skipCorrupt: "boolean" }) as {
        pipelineId?: string;
        skipCorrupt?: boolean;
      };
      const { pipelineId } = b;
      if (pipelineId === undefined) throw new InvalidArgumentError("export needs pipelineId");
      assertValidName("pipelineId", pipelineId);
      const work = async () => {
        // The library writes exports durably to a file; a private temporary folder holds it briefly.
        const dir = await mkdtemp(join(tmpdir(), "cairn-ui-export-"));
        try {
          const path = join(dir, "run.json");
          const report = await ctx.manager.exportPipeline(pipelineId, path, {
            skipCorrupt: b.skipCorrupt === true,
          });
          return { filename: `${pipelineId}.json`, text: await readFile(path, "utf8"), report };
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      };
      const { filename, text } = await audited("export", { pipelineId }, who, work, (r) => ({
        checkpoints: r.report.checkpointIds.length,
        skipped: r.report.skipped.length,
        form: r.report.form,
        bytes: Buffer.byteLength(r.text),
      }));
      return { filename, text };
    },
  };
}
