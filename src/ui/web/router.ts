import { useEffect, useState } from "preact/hooks";

/** The page the hash names: `#/runs/<id>?x=y` -> parts ["runs", id], query x=y. */
export interface Route {
  parts: string[];
  query: URLSearchParams;
}

/** Parses a location hash; each path part is URL-decoded (ids may hold any character). */
export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, "");
  const q = raw.indexOf("?");
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : raw.slice(q + 1));
  const parts = path
    .split("/")
    .filter((p) => p !== "")
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  return { parts, query };
}

/** Builds a hash link: `href(["runs", id], {a: "1"})` -> `#/runs/<encoded id>?a=1`. */
export function href(parts: string[], query?: Record<string, string | undefined>): string {
  const path = `#/${parts.map(encodeURIComponent).join("/")}`;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== "") q.set(k, v);
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

/** Goes to a hash link (adds a history entry unless `replace`). */
export function navigate(link: string, replace = false): void {
  if (replace) history.replaceState(null, "", link);
  else location.hash = link;
  if (replace) window.dispatchEvent(new HashChangeEvent("hashchange"));
}

/** The current route, re-rendering on every hash change. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const onChange = (): void => setRoute(parseHash(location.hash));
    window.addEventListener("hashchange", onChange);
    // A hash change between the first render and this effect fired no listener: read it now.
    onChange();
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}
