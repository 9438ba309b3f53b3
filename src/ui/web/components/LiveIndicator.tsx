import { useLiveState } from "../live";

/** "live" while the change feed is connected, "polling every N s" in poll mode. */
export function LiveIndicator() {
  const s = useLiveState();
  let text: string;
  let cls: string;
  if (s.mode === "poll") {
    text = `polling every ${Math.round((s.intervalMs ?? 0) / 100) / 10} s`;
    cls = "live-poll";
  } else if (s.mode === "feed") {
    text = s.connected ? "live" : "reconnecting…";
    cls = s.connected ? "live-on" : "live-off";
  } else {
    text = "not live";
    cls = "live-off";
  }
  return (
    <span
      class={`live ${cls}`}
      data-testid="live-indicator"
      data-mode={s.mode}
      data-connected={String(s.connected)}
      title={s.mode === "feed" ? "Updates arrive through the store's change feed (server-sent events)" : ""}
    >
      <span class="dot" aria-hidden="true" />
      {text}
    </span>
  );
}
