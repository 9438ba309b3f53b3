import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, getJson } from "./api";

/** A GET's result: data once loaded, the error if it failed, and a way to fetch again. */
export interface Fetched<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  /** Fetches again, keeping the shown data until the answer arrives (no flicker on live refresh). */
  reload: () => void;
}

/** Fetches `url` (null: nothing) and refetches when it changes; stale answers are dropped. */
export function useFetch<T>(url: string | null): Fetched<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [tick, setTick] = useState(0);
  const shownUrl = useRef<string | null>(null);

  useEffect(() => {
    if (url === null) return;
    const ctrl = new AbortController();
    // A new url clears the old page's data; a reload of the same url keeps it while loading.
    if (shownUrl.current !== url) {
      setData(undefined);
      shownUrl.current = url;
    }
    setLoading(true);
    getJson<T>(url, ctrl.signal).then(
      (d) => {
        if (ctrl.signal.aborted) return;
        setData(d);
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (ctrl.signal.aborted) return;
        setError(e instanceof ApiError ? e : new ApiError("CLIENT", String(e), 0));
        setLoading(false);
      },
    );
    return () => ctrl.abort();
  }, [url, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}

/** Turns any thrown value into an ApiError for the error banner. */
export function asApiError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError("CLIENT", e instanceof Error ? e.message : String(e), 0);
}
