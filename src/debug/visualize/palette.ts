/** The fixed colours of checkpoint graphs, shared by the SVG, PNG, Mermaid and DOT renderers. */
import type { CheckpointStatusValue } from "../../core/types.js";

/** What a node's fill colour says: a checkpoint status, or an unreadable listing entry (`corrupt`). */
export type NodeColorKey = CheckpointStatusValue | "corrupt";

/** Fill colour of a node by status; solid, so a PNG holds these exact RGB values. */
export const STATUS_COLORS: Readonly<Record<NodeColorKey, string>> = {
  completed: "#2e7d32",
  in_progress: "#1565c0",
  failed: "#c62828",
  resumed: "#f9a825",
  expired: "#757575",
  corrupt: "#8e24aa",
};

/** Text colour on each fill, chosen for contrast. */
export const STATUS_TEXT_COLORS: Readonly<Record<NodeColorKey, string>> = {
  completed: "#ffffff",
  in_progress: "#ffffff",
  failed: "#ffffff",
  resumed: "#212121",
  expired: "#ffffff",
  corrupt: "#ffffff",
};

/** Colours of everything else drawn. */
export const MARK_COLORS = {
  /** Dashed border of a checkpoint that fails validation. */
  invalid: "#d50000",
  /** Outline and text of a removed parent. */
  removed: "#757575",
  /** Band behind the error message of a stage that failed. */
  failure: "#8e0000",
  /** Text on the failure band. */
  failureText: "#ffffff",
  /** Parent → child arrows. */
  edge: "#546e7a",
  /** Outline of every node. */
  outline: "#263238",
  /** Main text outside nodes. */
  text: "#212121",
  /** Secondary text outside nodes. */
  muted: "#616161",
  /** Page background. */
  background: "#ffffff",
} as const;

/** Legend entries, in display order. */
export const LEGEND_STATUSES: readonly NodeColorKey[] = [
  "completed",
  "in_progress",
  "failed",
  "resumed",
  "expired",
  "corrupt",
];

/** `in_progress` → `in progress`; `corrupt` (a listing entry that does not parse) → `unreadable entry`. */
export function statusLabel(key: NodeColorKey): string {
  return key === "corrupt" ? "unreadable entry" : key.replace(/_/g, " ");
}
