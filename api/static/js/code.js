// Code: highlighted code blocks with a copy button, and code runs (code, output, outcome).

import { highlight } from "./highlight.js";
import { copyText, el, icon } from "./ui.js";

export function codeBlock(code, lang) {
  const copyBtn = el("button", { type: "button", class: "code-copy", "aria-label": "Copy code" }, icon("copy"), el("span", { text: "Copy" }));
  copyBtn.addEventListener("click", async () => {
    const ok = await copyText(code);
    copyBtn.replaceChildren(icon(ok ? "check" : "copy"), el("span", { text: ok ? "Copied" : "Copy failed" }));
    window.setTimeout(() => copyBtn.replaceChildren(icon("copy"), el("span", { text: "Copy" })), 1600);
  });
  return el("figure", { class: "code-block" },
    el("figcaption", { class: "code-head" }, el("span", { class: "code-lang", text: lang || "code" }), copyBtn),
    el("pre", { class: "code-pre" }, el("code", { class: lang ? `lang-${lang.toLowerCase()}` : undefined }, highlight(code, lang))));
}

const OUTCOME_TEXT = {
  ok: "ran fine", error: "error", timeout: "timed out", memory: "out of memory",
  output_limit: "too much output", killed: "stopped", unavailable: "sandbox unavailable",
};

export function codeRun(run) {
  const outcome = run.outcome || "ok";
  const took = Number.isFinite(run.duration_ms) ? ` · ${run.duration_ms} ms` : "";
  return el("section", { class: `code-run outcome-${outcome}`, "aria-label": `Code run, ${OUTCOME_TEXT[outcome] || outcome}` },
    el("div", { class: "code-run-head" },
      el("span", { class: "code-run-title" }, icon("play"), el("span", { text: `Ran ${run.language || "code"}` })),
      el("span", { class: `outcome-badge outcome-${outcome}`, text: `${OUTCOME_TEXT[outcome] || outcome}${took}` })),
    codeBlock(run.code || "", run.language || ""),
    el("div", { class: "code-output" },
      el("div", { class: "code-output-label", text: "Output" }),
      run.stdout ? el("pre", { class: "code-stdout", text: run.stdout }) : null,
      run.stderr ? el("pre", { class: "code-stderr", text: run.stderr }) : null,
      !run.stdout && !run.stderr ? el("pre", { class: "code-empty", text: "(no output)" }) : null,
      run.message ? el("p", { class: "code-message", text: run.message }) : null));
}
