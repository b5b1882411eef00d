// A safe Markdown renderer: source text in, DOM nodes out. It never parses HTML: every piece of
// text becomes a text node, so `<script>`, `<img onerror=…>` and friends show as the literal
// characters. Links are kept only for http(s) and mailto URLs. Unclosed constructs (an answer
// still streaming) render as plain text until they close; an open code fence renders as code.
//
// Supported: paragraphs (single newlines kept as line breaks), # headings, lists (nested,
// ordered/unordered), > quotes, ``` fences, tables, ---, `code`, **bold**, *italic*, ~~strike~~,
// [text](url), bare URLs, and citation markers [n] / [n, m] through `options.citation(n)`.

import { el } from "./ui.js";

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^\n]*$/;
const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}>[ \t]?/;
const LIST_ITEM = /^([ \t]*)([-*+]|\d{1,9}[.)])[ \t]+/;
const TABLE_SEP = /^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
const BLANK = /^[ \t]*$/;

const SAFE_URL = /^(?:https?:\/\/|mailto:)/i;

/**
 * @param {string} source
 * @param {{citation?: (n: number) => Node | null, codeBlock?: (code: string, lang: string) => Node}} options
 * @returns {DocumentFragment}
 */
export function renderMarkdown(source, options = {}) {
  const opts = { citation: () => null, codeBlock: defaultCodeBlock, ...options };
  const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
  const out = document.createDocumentFragment();
  parseBlocks(lines, out, opts);
  return out;
}

function indentOf(line) {
  const m = /^[ \t]*/.exec(line);
  return m ? m[0].replace(/\t/g, "    ").length : 0;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || LIST_ITEM.test(line);
}

function parseBlocks(lines, out, opts) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (BLANK.test(line)) { i += 1; continue; }

    let m = FENCE.exec(line);
    if (m) {
      const marker = m[1];
      const close = new RegExp(`^ {0,3}${marker[0] === "`" ? "`" : "~"}{${marker.length},}[ \\t]*$`);
      const body = [];
      i += 1;
      while (i < lines.length && !close.test(lines[i])) { body.push(lines[i]); i += 1; }
      i += 1; // the closing fence (or past the end while streaming)
      out.append(opts.codeBlock(body.join("\n"), m[2] || ""));
      continue;
    }

    m = HEADING.exec(line);
    if (m) {
      // Answers live inside a page that has its own h1/h2: start at h3.
      const level = Math.min(m[1].length + 2, 6);
      out.append(el(`h${level}`, { class: `md-h md-h${m[1].length}` }, inline(m[2], opts)));
      i += 1;
      continue;
    }

    if (RULE.test(line)) { out.append(el("hr")); i += 1; continue; }

    if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && !BLANK.test(lines[i]) && (QUOTE.test(lines[i]) || !startsBlock(lines[i]))) {
        inner.push(lines[i].replace(QUOTE, ""));
        i += 1;
      }
      const quote = el("blockquote");
      parseBlocks(inner, quote, opts);
      out.append(quote);
      continue;
    }

    if (LIST_ITEM.test(line)) { i = parseList(lines, i, out, opts); continue; }

    if (line.includes("|") && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) && lines[i + 1].includes("-")) {
      i = parseTable(lines, i, out, opts);
      continue;
    }

    const para = [];
    while (i < lines.length && !BLANK.test(lines[i]) && (para.length === 0 || !startsBlock(lines[i]))) {
      para.push(lines[i].trim());
      i += 1;
    }
    out.append(paragraph(para, opts));
  }
}

function paragraph(lines, opts) {
  const p = el("p");
  lines.forEach((line, n) => {
    if (n > 0) p.append(el("br"));
    p.append(inline(line, opts));
  });
  return p;
}

function parseList(lines, start, out, opts) {
  const first = LIST_ITEM.exec(lines[start]);
  const indent = indentOf(first[1]);
  const ordered = /\d/.test(first[2]);
  const list = el(ordered ? "ol" : "ul");
  if (ordered) {
    const n = parseInt(first[2], 10);
    if (n !== 1) list.setAttribute("start", String(n));
  }
  let i = start;
  while (i < lines.length) {
    const m = LIST_ITEM.exec(lines[i]);
    if (!m || indentOf(m[1]) !== indent || /\d/.test(m[2]) !== ordered) break;
    const contentIndent = m[0].replace(/\t/g, "    ").length;
    const body = [lines[i].slice(m[0].length)];
    let loose = false;
    i += 1;
    while (i < lines.length) {
      const line = lines[i];
      if (BLANK.test(line)) {
        let j = i + 1;
        while (j < lines.length && BLANK.test(lines[j])) j += 1;
        if (j < lines.length && indentOf(lines[j]) > indent && !(LIST_ITEM.test(lines[j]) && indentOf(lines[j]) <= indent)) {
          body.push("");
          loose = true;
          i += 1;
          continue;
        }
        break;
      }
      const sub = LIST_ITEM.exec(line);
      if (sub && indentOf(sub[1]) <= indent) break;
      if (!sub && indentOf(line) <= indent && startsBlock(line)) break;
      const strip = Math.min(indentOf(line), contentIndent);
      body.push(line.replace(/\t/g, "    ").slice(strip));
      i += 1;
    }
    const item = el("li");
    parseBlocks(body, item, opts);
    // A tight list item is just its text: unwrap the paragraph.
    if (!loose && item.firstChild && item.firstChild.nodeName === "P") {
      const p = item.firstChild;
      p.replaceWith(...p.childNodes);
    }
    list.append(item);
    // Skip blank lines between items of the same list.
    let j = i;
    while (j < lines.length && BLANK.test(lines[j])) j += 1;
    if (j > i && j < lines.length) {
      const next = LIST_ITEM.exec(lines[j]);
      if (next && indentOf(next[1]) === indent && /\d/.test(next[2]) === ordered) i = j;
    }
  }
  out.append(list);
  return i;
}

function splitRow(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  const cells = [];
  let cell = "";
  for (let k = 0; k < row.length; k += 1) {
    if (row[k] === "\\" && row[k + 1] === "|") { cell += "|"; k += 1; continue; }
    if (row[k] === "|") { cells.push(cell.trim()); cell = ""; continue; }
    cell += row[k];
  }
  cells.push(cell.trim());
  return cells;
}

function parseTable(lines, start, out, opts) {
  const header = splitRow(lines[start]);
  const aligns = splitRow(lines[start + 1]).map((c) =>
    c.startsWith(":") && c.endsWith(":") ? "center" : c.endsWith(":") ? "right" : c.startsWith(":") ? "left" : "");
  const cell = (tag, text, k) => el(tag, { class: aligns[k] ? `align-${aligns[k]}` : undefined }, inline(text, opts));
  const thead = el("thead", {}, el("tr", {}, header.map((text, k) => cell("th", text, k))));
  const tbody = el("tbody");
  let i = start + 2;
  while (i < lines.length && !BLANK.test(lines[i]) && lines[i].includes("|")) {
    const cells = splitRow(lines[i]);
    tbody.append(el("tr", {}, header.map((_, k) => cell("td", cells[k] ?? "", k))));
    i += 1;
  }
  out.append(el("div", { class: "table-wrap" }, el("table", {}, thead, tbody)));
  return i;
}

// --- inline --------------------------------------------------------------------------------------

const INLINE = new RegExp([
  "(`+)",                                                        // 1 code span opener
  "\\\\([\\\\`*_{}\\[\\]()#+\\-.!|~>])",                          // 2 escaped punctuation
  "\\[([^\\[\\]\\n]+)\\]\\(([^()\\s]+)(?:\\s+\"[^\"\\n]*\")?\\)", // 3 text, 4 url
  "\\[(\\d{1,3}(?:\\s*,\\s*\\d{1,3})*)\\]",                        // 5 citation numbers
  "\\*\\*(?=\\S)([\\s\\S]+?)\\*\\*",                              // 6 bold
  "(?<![\\w])__(?=\\S)([\\s\\S]+?)__(?![\\w])",                   // 7 bold (not inside words)
  "~~(?=\\S)([\\s\\S]+?)~~",                                     // 8 strike
  "\\*(?=[^\\s*])([\\s\\S]+?)\\*",                                // 9 italic
  "(?<![\\w])_(?=[^\\s_])([\\s\\S]+?)_(?![\\w])",                 // 10 italic
  "(https?:\\/\\/[^\\s<>\"'`]+)",                                 // 11 bare URL
].join("|"), "g");

function inline(text, opts, depth = 0) {
  const out = document.createDocumentFragment();
  const re = new RegExp(INLINE.source, "g");
  let last = 0;
  let m;
  const pushText = (s) => { if (s) out.append(document.createTextNode(s)); };
  while ((m = re.exec(text)) !== null) {
    const start = m.index;
    if (m[1]) {
      const run = m[1];
      const end = text.indexOf(run, start + run.length);
      if (end === -1) { continue; } // an unclosed span stays text
      pushText(text.slice(last, start));
      const code = text.slice(start + run.length, end);
      out.append(el("code", { class: "md-code", text: code.length > 2 && code.startsWith(" ") && code.endsWith(" ") ? code.slice(1, -1) : code }));
      last = end + run.length;
      re.lastIndex = last;
      continue;
    }
    pushText(text.slice(last, start));
    last = re.lastIndex;
    if (m[2]) pushText(m[2]);
    else if (m[3] !== undefined) {
      const url = m[4];
      if (SAFE_URL.test(url) && depth === 0) {
        out.append(el("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow" }, inline(m[3], opts, depth + 1)));
      } else {
        out.append(inline(m[3], opts, depth + 1));
        if (!SAFE_URL.test(url)) pushText(` (${url})`);
      }
    } else if (m[5]) {
      const numbers = m[5].split(",").map((s) => parseInt(s.trim(), 10));
      const chips = numbers.map((n) => opts.citation(n));
      if (chips.every(Boolean)) chips.forEach((chip) => out.append(chip));
      else pushText(m[0]);
    } else if (m[6] !== undefined || m[7] !== undefined) out.append(el("strong", {}, inline(m[6] ?? m[7], opts, depth + 1)));
    else if (m[8] !== undefined) out.append(el("del", {}, inline(m[8], opts, depth + 1)));
    else if (m[9] !== undefined || m[10] !== undefined) out.append(el("em", {}, inline(m[9] ?? m[10], opts, depth + 1)));
    else if (m[11]) {
      let url = m[11];
      const trail = /[.,;:!?)\]]+$/.exec(url);
      if (trail) { url = url.slice(0, -trail[0].length); re.lastIndex -= trail[0].length; last = re.lastIndex; }
      if (depth === 0) out.append(el("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow", text: url }));
      else pushText(url);
    }
  }
  pushText(text.slice(last));
  return out;
}

function defaultCodeBlock(code, lang) {
  return el("pre", { class: "md-pre" }, el("code", { text: code, dataset: { lang } }));
}
