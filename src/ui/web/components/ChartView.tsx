import type { ChartConfiguration } from "chart.js";
import { useEffect, useRef } from "preact/hooks";

/** A Chart.js chart; the library loads (as its own chunk) only on pages that draw one. */
export function ChartView({
  config,
  testid,
  height = 280,
}: {
  config: ChartConfiguration;
  testid: string;
  height?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    // The CSP allows setting element.style from script, not style="" attributes in markup.
    if (box.current) box.current.style.height = `${height}px`;
  }, [height]);
  useEffect(() => {
    let chart: { destroy(): void } | undefined;
    let cancelled = false;
    void import("../charts").then(({ Chart }) => {
      if (cancelled || !canvas.current) return;
      chart = new Chart(canvas.current, config);
    });
    return () => {
      cancelled = true;
      chart?.destroy();
    };
  }, [config]);
  return (
    <div class="chart-box" ref={box} data-testid={testid}>
      <canvas ref={canvas} />
    </div>
  );
}
