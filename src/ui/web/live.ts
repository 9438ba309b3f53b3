import { useEffect, useRef, useState } from "preact/hooks";
import type { LiveMode } from "./types";

/** One change the server's feed reported (`event: change`). */
export interface ChangeEvent {
  type: string;
  pipelineId: string;
  pipelineName: string;
  checkpointId: string | null;
  sequence: number | null;
  at: string;
  cursor: string;
}

/** What the live indicator shows. */
export interface LiveState {
  mode: "feed" | "poll" | "off";
  connected: boolean;
  intervalMs?: number;
  lastChangeAt?: number;
}

type Listener = (change: ChangeEvent | null) => void;

// One EventSource (or one timer) for the whole page, shared by every subscriber: a browser allows
// few connections per host, and pages come and go as the user navigates.
const listeners = new Set<Listener>();
const stateListeners = new Set<(s: LiveState) => void>();
let state: LiveState = { mode: "off", connected: false };
let started = false;

function setState(next: Partial<LiveState>): void {
  state = { ...state, ...next };
  for (const l of stateListeners) l(state);
}

function emit(change: ChangeEvent | null): void {
  for (const l of listeners) l(change);
}

/** Starts the page's live updates once: SSE from /api/events, or a poll timer. */
export function startLive(live: LiveMode): void {
  if (started) return;
  started = true;
  if (live.mode === "poll") {
    setState({ mode: "poll", connected: true, intervalMs: live.intervalMs });
    setInterval(
      () => {
        setState({ lastChangeAt: Date.now() });
        emit(null);
      },
      Math.max(250, live.intervalMs),
    );
    return;
  }
  setState({ mode: "feed", connected: false });
  const source = new EventSource("/api/events");
  let lost = false;
  // After a reconnect, changes made meanwhile were never sent: refetch once.
  const connected = (): void => {
    setState({ connected: true });
    if (lost) {
      lost = false;
      emit(null);
    }
  };
  source.addEventListener("hello", connected);
  source.addEventListener("open", connected);
  source.addEventListener("change", (e) => {
    let change: ChangeEvent | null = null;
    try {
      change = JSON.parse((e as MessageEvent<string>).data) as ChangeEvent;
    } catch {
      change = null;
    }
    setState({ connected: true, lastChangeAt: Date.now() });
    emit(change);
  });
  // The server's watcher lost its place in the feed (trimmed): every page refetches everything.
  source.addEventListener("resync", () => {
    setState({ connected: true, lastChangeAt: Date.now() });
    emit(null);
  });
  // EventSource reconnects by itself; the indicator says so meanwhile.
  source.addEventListener("error", () => {
    lost = true;
    setState({ connected: false });
  });
}

/** The live indicator's state, re-rendering on changes. */
export function useLiveState(): LiveState {
  const [s, set] = useState(state);
  useEffect(() => {
    stateListeners.add(set);
    set(state);
    return () => {
      stateListeners.delete(set);
    };
  }, []);
  return s;
}

/**
 * Calls `refresh` after changes (throttled: a burst of checkpoints triggers one refetch).
 * `filter` picks the changes that concern the page; poll ticks and resyncs always pass.
 */
export function useLiveRefresh(
  refresh: () => void,
  filter?: (change: ChangeEvent) => boolean,
  debounceMs = 150,
): void {
  const ref = useRef({ refresh, filter });
  ref.current = { refresh, filter };
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const listener: Listener = (change) => {
      const f = ref.current.filter;
      if (change && f && !f(change)) return;
      // Throttle, not debounce: a steady stream of changes must not postpone the refresh forever,
      // and the first change is shown within `debounceMs`.
      if (timer !== undefined) return;
      timer = setTimeout(() => {
        timer = undefined;
        ref.current.refresh();
      }, debounceMs);
    };
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [debounceMs]);
}
