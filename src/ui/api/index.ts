/** The console's read-side data functions, one file per page; the HTTP layer mounts them. */
export {
  type CheckpointDetail,
  checkpointDetail,
  checkpointExport,
  checkpointOutput,
  checkpointState,
  type Lazy,
} from "./checkpoint.js";
export { type Comparison, compareCheckpoints, type Diff } from "./compare.js";
export { type ApiContext, decodeCursor, encodeCursor } from "./context.js";
export {
  type Attempt,
  type ChainNode,
  type Problem,
  type Recovery,
  type RunDetail,
  runDetail,
  runGraphSvg,
  type StageRow,
} from "./run.js";
export { listRunsPage, MAX_SCAN, type RunRow, type RunsPage, type RunsQuery, runRow } from "./runs.js";
export { type SeriesPoint, type StatisticsPage, statistics } from "./statistics.js";
