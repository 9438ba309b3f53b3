/**
 * HTTP requests with the path sent exactly as given: `fetch` (and the URL class) resolve `../`
 * and re-encode before sending, which would hide from the server the very paths the fuzz tests
 * want it to see. Bytes Node refuses in a request line (controls, spaces, non-ASCII) are
 * percent-encoded; everything else goes on the wire verbatim.
 */
import { request } from "node:http";

/** Status, headers and body text of one answer. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** `path` with only the bytes a request line cannot carry percent-encoded. */
export function wirePath(path: string): string {
  let out = "";
  for (const byte of Buffer.from(path, "utf8")) {
    out +=
      byte > 0x20 && byte < 0x7f
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Sends `method path` to `origin` (e.g. `http://127.0.0.1:4848`) with the path as given. */
export function rawRequest(
  origin: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port: Number(port),
        method: options.method ?? "GET",
        path: wirePath(path),
        headers: options.headers,
        // The server must answer on its own; a stuck request fails the test rather than hangs it.
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () =>
      req.destroy(new Error(`no answer to ${options.method ?? "GET"} ${path.slice(0, 100)}`)),
    );
    req.on("error", reject);
    req.end(options.body);
  });
}
