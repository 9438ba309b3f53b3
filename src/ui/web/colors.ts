/** Status colours shared by charts (style.css uses the same values for badges). */
export const STATUS_COLOR: Record<string, string> = {
  completed: "#2e7d32",
  failed: "#c62828",
  running: "#1565c0",
  in_progress: "#1565c0",
  paused: "#ef8f00",
  resumed: "#6a1b9a",
  pending: "#9e9e9e",
  skipped: "#bdbdbd",
  expired: "#757575",
  corrupt: "#7f0000",
};

/** The colour of a status, grey for unknown ones. */
export const statusColor = (s: string): string => STATUS_COLOR[s] ?? "#607d8b";
