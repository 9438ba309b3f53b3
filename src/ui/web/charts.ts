import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  PointElement,
  ScatterController,
  Title,
  Tooltip,
} from "chart.js";

// Only what the console draws (floating bars, scatter, linear/category axes): Chart.js tree-shakes
// the rest. No time scale: it needs a date adapter, so time axes are linear milliseconds.
Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Legend,
  LinearScale,
  PointElement,
  ScatterController,
  Title,
  Tooltip,
);

export { Chart };
