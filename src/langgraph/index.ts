/**
 * `cairn-pipelines/langgraph`: cairn as a LangGraph.js checkpointer. Needs the optional peer
 * `@langchain/langgraph-checkpoint` (and its peer `@langchain/core`).
 */

export { isThreadRun, threadCheckpointId, threadPipelineName, threadRunId } from "./ids.js";
export { CairnSaver, type CairnSaverOptions } from "./saver.js";
