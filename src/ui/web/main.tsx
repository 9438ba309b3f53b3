import { render } from "preact";
import { App } from "./App";
import "./style.css";
import "./components.css";
import "./pages.css";

const root = document.getElementById("app");
if (root) render(<App />, root);
