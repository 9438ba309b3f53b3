/**
 * cairn: checkpointed, resumable data pipelines. The package root never loads a database
 * driver; each store imports its driver when it is created.
 */
export { decode, encode, MAX_DEPTH } from "./core/codec.js";
export {
  CairnError,
  CheckpointConflictError,
  CheckpointCorruptError,
  CheckpointNotFoundError,
  ClosedError,
  ErrorCode,
  type ErrorCodeValue,
  FeedTrimmedError,
  FormatTooNewError,
  HistoryLostError,
  InvalidArgumentError,
  InvalidConfigError,
  InvalidNameError,
  isCairnError,
  KeyMissingError,
  LeaseLostError,
  MigrationError,
  MissingDriverError,
  RunLockedError,
  StoreNotFoundError,
  StoreNotSharedError,
  StoreOperationError,
  StoreUnavailableError,
  StoreUnsupportedError,
  TipMovedError,
  TooLargeError,
  UnserializableValueError,
  type VersionedThing,
} from "./core/errors.js";
export { assertValidName, isValidName, NAME_PATTERN, newRunId } from "./core/ids.js";
export {
  CHECKPOINT_STATUSES,
  type CheckpointMetadata,
  type CheckpointStatistics,
  CheckpointStatus,
  type CheckpointStatusValue,
  type CreateCheckpointInput,
  FORMAT_VERSION,
  type OutputMigration,
  PIPELINE_COMPLETE_STAGE,
  type PipelineCheckpoint,
  type PipelineSummary,
  RESUMABLE_STATUSES,
  type ResumeContext,
  type RunSummaryStatus,
  STRATEGIES,
  type Strategy,
  type ValidationProblem,
  type ValidationResult,
} from "./core/types.js";
export { analyzePipeline, type PipelineAnalysis, renderAnalysisText } from "./debug/analyze.js";
export type { CostAnalysis, CostAnalysisOptions, StageCostRow } from "./debug/analyze-costs.js";
export { type CheckpointComparison, compareCheckpoints } from "./debug/compare.js";
export {
  DEFAULT_BACKUP_DIR,
  type RepairOptions,
  type RepairReport,
  type RepairStatus,
  repairCheckpoint,
} from "./debug/repair.js";
export { buildRecoveryReport, type RecoveryReport, type ReportFormat, renderReport } from "./debug/report.js";
export {
  buildCheckpointGraph,
  type CheckpointGraph,
  formatFromPath,
  GRAPH_FORMATS,
  renderCheckpointGraph,
  STATUS_COLORS,
} from "./debug/visualize/index.js";
export {
  type CheckpointRef,
  type CompareStoresFilters,
  type CorruptRef,
  compareStores,
  type DivergedCheckpoint,
  type OneSidedRun,
  type RunDifference,
  type StatusDifference,
  type StoreComparison,
} from "./feed/compare-stores.js";
export { replicate } from "./feed/replicate.js";
export type {
  ChangeEvent,
  ReplicateOptions,
  ReplicationProblem,
  ReplicationProgress,
  ReplicationReport,
  WatchOptions,
} from "./feed/types.js";
export { CHECK_SYMBOLS, STATUS_SYMBOLS } from "./manager/chain-text.js";
export type {
  RekeyOptions,
  RekeyReport,
  RunInfo,
  UpgradedRun,
  UpgradeOptions,
  UpgradeReport,
  UpgradeSkip,
  UpgradeTarget,
} from "./manager/checkpoint-manager.js";
export {
  CheckpointManager,
  type CheckpointManagerOptions,
  type ImportOptions,
} from "./manager/checkpoint-manager.js";
export type { CheckpointExportOptions } from "./manager/checkpoint-transfer.js";
export { DEFAULT_COST_RUNS, type LearnCostsOptions, type LearnedCosts } from "./manager/cost-history.js";
export type { HistoryFinding } from "./manager/history.js";
export type { CleanupOptions, CleanupReport, RunCleanupReport } from "./manager/retention.js";
export type {
  ExportForm,
  ProgressCallback,
  RunExportOptions,
  RunExportReport,
  RunImportOptions,
  RunImportReport,
  SkippedCheckpoint,
} from "./manager/run-transfer.js";
export type {
  CheckpointVerdict,
  RunSummary,
  RunValidation,
  SealedKey,
  WalkOptions,
} from "./manager/run-walk.js";
export type { SalvagedResume } from "./manager/salvage.js";
export type { StatisticsOptions } from "./manager/statistics.js";
export { EXPORT_VERSION } from "./manager/transfer.js";
export { registerAgent, registeredAgent, unregisterAgent } from "./pipeline/agents.js";
export {
  buildCostModel,
  type CheckpointDecision,
  type CheckpointQuestion,
  type CheckpointReason,
  type CostModel,
  type CostModelOptions,
  checkpointWorthIt,
  DEFAULT_ALPHA,
  DEFAULT_MIN_SAMPLES,
  estimateRemaining,
  ewma,
  type PlanLike,
  type PolicyStage,
  type PolicyStep,
  planCheckpoints,
  type RemainingEstimate,
  type StageCost,
  type StageObservation,
} from "./pipeline/cost-model.js";
export type { StageProgress } from "./pipeline/execution.js";
export { Pipeline } from "./pipeline/pipeline.js";
export { PLAN_COST_RUNS, type PlanEstimate, planEstimate } from "./pipeline/plan-estimate.js";
export type { RunPlan, StageAction, StageDecision } from "./pipeline/planner.js";
export { PROGRESS_SYMBOLS } from "./pipeline/progress.js";
export { InvalidReferenceError } from "./pipeline/references.js";
export { PipelineAbortedError, StageFailedError, StageTimeoutError } from "./pipeline/stage-runner.js";
export type {
  Agent,
  AgentFunction,
  AgentObject,
  DryRunResult,
  ExecuteOptions,
  MigratedStage,
  PipelineEvent,
  PipelineOptions,
  PipelineResults,
  PlannedStage,
  RerunReason,
  StageContext,
  StepDefinition,
  StepResult,
} from "./pipeline/types.js";
export { InvalidPipelineError } from "./pipeline/validate.js";
export {
  DEFAULT_BASE_PATH,
  type OpenOptions,
  openStore,
  registeredStrategies,
  registerStore,
  resolveStore,
  type StoreConfig,
  type StoreDefinition,
  type StoreSpec,
} from "./stores/registry.js";
export type {
  ChangeType,
  CheckpointRecord,
  CheckpointStore,
  CorruptEntry,
  DeleteCheckpointsOptions,
  ImportedCheckpoint,
  ImportRunOptions,
  Lease,
  LeaseAttempt,
  ListedCheckpoint,
  ListRunsQuery,
  MigrationStatus,
  OutputRecord,
  PutOptions,
  RunEntry,
  RunHead,
  RunPage,
  StatusPatch,
  StoreChange,
  StoredMetadata,
} from "./stores/types.js";
export type {
  CompressionAlgorithm,
  CompressionSetting,
} from "./transforms/compression.js";
export {
  type KeyFileContent,
  keyFileOptions,
  readKeyFile,
  readKeyFileContent,
  writeKeyFile,
} from "./transforms/key-file.js";
export type { EncryptionOptions } from "./transforms/keys.js";
