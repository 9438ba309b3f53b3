import { useState } from "preact/hooks";

// navigator.clipboard needs a secure context (127.0.0.1 is one; http://other-host is not).
async function copy(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

/** Copies `text` to the clipboard and says so for a moment. */
export function CopyButton({ text, testid = "copy" }: { text: string; testid?: string }) {
  const [copied, setCopied] = useState<"" | "ok" | "fail">("");
  return (
    <button
      type="button"
      class="small"
      data-testid={testid}
      onClick={() => {
        void copy(text).then((ok) => {
          setCopied(ok ? "ok" : "fail");
          setTimeout(() => setCopied(""), 1500);
        });
      }}
    >
      {copied === "ok" ? "Copied" : copied === "fail" ? "Copy failed" : "Copy"}
    </button>
  );
}
