import { useEffect, useState } from "preact/hooks";
import { loadSession, setCsrfToken } from "./api";
import { ErrorBanner } from "./components/ErrorBanner";
import { LiveIndicator } from "./components/LiveIndicator";
import { asApiError } from "./hooks";
import { startLive } from "./live";
import { AuditPage } from "./pages/Audit";
import { CheckpointPage } from "./pages/Checkpoint";
import { CleanupPage } from "./pages/Cleanup";
import { ComparePage } from "./pages/Compare";
import { RunPage } from "./pages/Run";
import { RunsPage } from "./pages/Runs";
import { StatsPage } from "./pages/Stats";
import { href, type Route, useRoute } from "./router";
import type { Session } from "./types";

function Page({ route, session }: { route: Route; session: Session }) {
  const [head, id] = route.parts;
  switch (head) {
    case undefined:
    case "runs":
      return id === undefined ? (
        <RunsPage query={route.query} />
      ) : (
        <RunPage key={id} id={id} session={session} />
      );
    case "checkpoints":
      if (id !== undefined) return <CheckpointPage key={id} cid={id} session={session} />;
      break;
    case "compare":
      return <ComparePage query={route.query} />;
    case "stats":
      return <StatsPage />;
    case "audit":
      return <AuditPage />;
    case "cleanup":
      if (session.allowActions) return <CleanupPage />;
      return (
        <p class="muted" data-testid="actions-off">
          Actions are off: start the console with <code>cairn ui --allow-actions</code> to clean up.
        </p>
      );
  }
  return (
    <p data-testid="not-found">
      No such page. <a href={href(["runs"])}>Back to the runs</a>
    </p>
  );
}

const NAV: { parts: string[]; label: string; actions?: boolean }[] = [
  { parts: ["runs"], label: "Runs" },
  { parts: ["stats"], label: "Statistics" },
  { parts: ["compare"], label: "Compare" },
  { parts: ["audit"], label: "Audit" },
  { parts: ["cleanup"], label: "Cleanup", actions: true },
];

/** The console: loads the session (CSRF token, live mode), then routes by the location hash. */
export function App() {
  const route = useRoute();
  const [session, setSession] = useState<Session | undefined>(undefined);
  const [error, setError] = useState<ReturnType<typeof asApiError> | undefined>(undefined);
  useEffect(() => {
    loadSession().then(
      (s) => {
        setCsrfToken(s.csrfToken);
        startLive(s.live);
        setSession(s);
      },
      (e: unknown) => setError(asApiError(e)),
    );
  }, []);
  const current = route.parts[0] ?? "runs";
  useEffect(() => {
    document.title = `cairn · ${current}${route.parts[1] ? ` ${route.parts[1]}` : ""}`;
  }, [current, route.parts[1]]);
  return (
    <>
      <header class="top">
        <a class="brand" href={href(["runs"])}>
          cairn
        </a>
        <nav>
          {NAV.filter((n) => !n.actions || session?.allowActions).map((n) => (
            <a
              key={n.label}
              href={href(n.parts)}
              class={current === n.parts[0] ? "active" : ""}
              data-testid={`nav-${n.parts[0]}`}
            >
              {n.label}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        {session && (
          <span class="store" data-testid="store" title={`cairn ${session.version} · user ${session.user}`}>
            {session.store.location.startsWith(`${session.store.strategy}:`)
              ? session.store.location
              : `${session.store.strategy}:${session.store.location}`}
            <span
              class={session.allowActions ? "badge actions-on" : "badge actions-off"}
              data-testid="actions-mode"
            >
              {session.allowActions ? "actions on" : "read-only"}
            </span>
          </span>
        )}
        {session && <LiveIndicator />}
      </header>
      <main>
        <ErrorBanner error={error} />
        {session ? <Page route={route} session={session} /> : !error && <p class="muted">loading…</p>}
      </main>
    </>
  );
}
