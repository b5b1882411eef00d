// A tiny syntax highlighter: comments, strings, numbers, keywords, calls. It only wraps pieces of
// the code in <span class="tok-…"> built with textContent, so the code itself can never become markup.

const KEYWORDS = new Set((
  // Python
  "and as assert async await break class continue def del elif else except finally for from global if import " +
  "in is lambda nonlocal not or pass raise return try while with yield match case " +
  // JavaScript / TypeScript
  "const let var function new delete typeof instanceof void this super extends implements interface type enum " +
  "export default switch throw catch of static get set readonly public private protected declare namespace " +
  // Go / Rust / Java / C-family
  "func package go defer chan select map struct range fallthrough fn mut impl trait pub use mod crate where " +
  "loop move ref unsafe dyn int long short float double char byte bool boolean string final abstract " +
  "synchronized throws goto sizeof typedef union unsigned signed extern " +
  // shell
  "then fi do done esac elif echo export local source function"
).split(/\s+/));

// SQL words are matched case-insensitively, and only in SQL blocks.
const SQL_KEYWORDS = new Set((
  "select from where insert into values update set delete create table index drop alter join left right inner " +
  "outer on group by order limit offset having union all distinct as and or not null primary key references with " +
  "returning case when then else end is in like between exists begin commit rollback"
).split(/\s+/));

const LITERALS = new Set(["true", "false", "null", "None", "True", "False", "nil", "undefined", "NaN", "self"]);

const HASH_COMMENTS = new Set(["python", "py", "sh", "bash", "shell", "zsh", "console", "ruby", "rb", "yaml", "yml",
  "toml", "dockerfile", "make", "makefile", "r", "perl", "ini", "conf", "text", "txt", "plaintext"]);
const SLASH_COMMENTS = new Set(["js", "javascript", "ts", "typescript", "jsx", "tsx", "java", "c", "cpp", "c++", "cs",
  "csharp", "go", "golang", "rust", "rs", "kotlin", "kt", "swift", "scala", "php", "json5", "css", "scss"]);
const DASH_COMMENTS = new Set(["sql", "psql", "postgres", "postgresql", "lua", "haskell"]);
const PLAIN = new Set(["text", "txt", "plaintext", "output", "log"]);

const STRING = String.raw`"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?|` + "`(?:\\\\.|[^`\\\\])*`?";
const NUMBER = String.raw`\b(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)\b`;
const WORD = String.raw`[A-Za-z_$][\w$]*`;

function tokenizer(lang) {
  const comments = [];
  if (HASH_COMMENTS.has(lang) || !lang) comments.push(String.raw`#[^\n]*`);
  if (SLASH_COMMENTS.has(lang) || !lang) comments.push(String.raw`\/\/[^\n]*`, String.raw`\/\*[\s\S]*?(?:\*\/|$)`);
  if (DASH_COMMENTS.has(lang)) comments.push(String.raw`--[^\n]*`);
  const comment = comments.length ? comments.join("|") : "(?!)";
  return new RegExp(`(${comment})|(${STRING})|(${NUMBER})|(${WORD})`, "g");
}

function span(cls, text) {
  const s = document.createElement("span");
  s.className = cls;
  s.textContent = text;
  return s;
}

/** Highlight `code` into a fragment of text nodes and spans. */
export function highlight(code, language = "") {
  const lang = (language || "").toLowerCase();
  const out = document.createDocumentFragment();
  if (PLAIN.has(lang) || code.length > 200_000) {
    out.append(document.createTextNode(code));
    return out;
  }
  const sql = DASH_COMMENTS.has(lang) && lang !== "lua" && lang !== "haskell";
  const re = tokenizer(lang);
  let last = 0;
  let m;
  while ((m = re.exec(code)) !== null) {
    if (m[0] === "") { re.lastIndex += 1; continue; }
    if (m.index > last) out.append(document.createTextNode(code.slice(last, m.index)));
    const [text, comment, str, num, word] = m;
    if (comment) out.append(span("tok-com", text));
    else if (str) out.append(span("tok-str", text));
    else if (num) out.append(span("tok-num", text));
    else if (word) {
      const keyword = sql ? SQL_KEYWORDS.has(word.toLowerCase()) : KEYWORDS.has(word);
      if (LITERALS.has(word)) out.append(span("tok-lit", text));
      else if (keyword) out.append(span("tok-kw", text));
      else if (code[re.lastIndex] === "(") out.append(span("tok-fn", text));
      else out.append(document.createTextNode(text));
    }
    last = re.lastIndex;
  }
  if (last < code.length) out.append(document.createTextNode(code.slice(last)));
  return out;
}
