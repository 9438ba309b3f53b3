/** The terminal output of `cairn replicate`: the status line and the summary. */
import { expect, it } from "vitest";
import { statusLine, summary } from "../../src/cli/commands/replicate.js";

const base = {
  runsDone: 0,
  runsTotal: 0,
  checkpointsCopied: 0,
  outputsCopied: 0,
  statusesCopied: 0,
  deletions: 0,
};

it("the status line shows the phase, runs, what was copied, the lag and what is behind", () => {
  expect(statusLine({ ...base, phase: "sync", runsDone: 3, runsTotal: 10, checkpointsCopied: 120 })).toBe(
    "sync · runs 3/10 · 120 copied",
  );
  expect(
    statusLine({
      ...base,
      phase: "follow",
      runsDone: 10,
      runsTotal: 10,
      checkpointsCopied: 130,
      statusesCopied: 2,
      deletions: 1,
      lagSeconds: 0.25,
      behind: 4,
    }),
  ).toBe("follow · runs 10/10 · 130 copied · 2 status · 1 deleted · lag 0.3 s · 4 behind");
  expect(statusLine({ ...base, phase: "retrying" })).toBe("retrying · 0 copied");
});

it("the summary lists what was copied, corrupt and diverged records, and hides passwords", () => {
  const text = summary(
    {
      checkpointsCopied: 1,
      outputsCopied: 2,
      statusesCopied: 0,
      runsDeleted: 1,
      checkpointsDeleted: 3,
      corrupt: [{ kind: "corrupt", pipelineId: "r1", checkpointId: "c1", message: "checksum mismatch" }],
      diverged: [{ kind: "diverged", pipelineId: "r2", message: "the target is ahead" }],
      syncs: 1,
      cursor: "abc:12",
    },
    "postgres://me:secret@db/x",
    "sqlite:./r.db",
    true,
  );
  expect(text).toContain("Stopped postgres://me:<password>@db/x → sqlite:./r.db: 1 checkpoint, 2 outputs");
  expect(text).toContain("1 run and 3 checkpoints deleted (1 full compare)");
  expect(text).toContain("1 corrupt source record not copied:\n  corrupt (run r1, c1): checksum mismatch");
  expect(text).toContain("1 record the target holds differently");
  expect(text).toContain("  diverged (run r2): the target is ahead");
  expect(text).toContain("The replica is at abc:12");
  expect(text).not.toContain("secret");
  expect(text).not.toContain("Refused to empty");
});

it("the summary says when an empty source was refused", () => {
  const message = "the source sqlite:/x.db holds no run while the target holds some: nothing was deleted";
  const text = summary(
    {
      checkpointsCopied: 0,
      outputsCopied: 0,
      statusesCopied: 0,
      runsDeleted: 0,
      checkpointsDeleted: 0,
      corrupt: [],
      diverged: [],
      emptySource: { kind: "empty-source", message },
      syncs: 1,
    },
    "sqlite:/x.db",
    "sqlite:./r.db",
    false,
  );
  expect(text).toContain(`Refused to empty the target: ${message}.`);
});
