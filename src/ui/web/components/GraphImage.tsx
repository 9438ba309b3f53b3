import { useEffect, useState } from "preact/hooks";
import { type ApiError, getJson } from "../api";
import { asApiError } from "../hooks";
import { ErrorBanner } from "./ErrorBanner";

/**
 * A graph the server renders as SVG, shown as an image (the CSP allows same-origin images). When
 * it fails to load, the same URL is fetched once more to show the server's error code and message.
 */
export function GraphImage({ src, alt, kind }: { src: string; alt: string; kind: string }) {
  const [error, setError] = useState<ApiError | undefined>(undefined);
  useEffect(() => setError(undefined), [src]);
  const failed = (): void => {
    getJson<unknown>(src).then(
      () => setError(asApiError(new Error("the graph could not be shown"))),
      (e: unknown) => setError(asApiError(e)),
    );
  };
  if (error) return <ErrorBanner error={error} />;
  return <img src={src} alt={alt} data-testid="run-graph" data-kind={kind} onError={failed} />;
}
