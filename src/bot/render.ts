/**
 * Markdown (as the assistant writes it) → Telegram HTML parse mode. Splitting an answer
 * into messages lives in `split.ts`, which builds on the block renderers exported here.
 *
 * Markdown is lexed with `marked`; rendering is ours, because Telegram accepts only a few
 * tags (b, i, u, s, code, pre, a, blockquote, tg-spoiler) and rejects a whole message for
 * one bad tag or entity. Every output is built from a token tree, so tags always balance,
 * also for half-written Markdown (streaming previews).
 */
import {
  getDefaults,
  Lexer,
  type Links,
  type MarkedToken,
  type Token,
  type Tokens,
  type TokensList,
} from "marked";

const HR_TEXT = "———";
const LIST_INDENT = "   ";

// ---------------------------------------------------------------------------
// Escaping and entities

/** Escapes text for Telegram HTML: `&`, `<`, `>` become entities. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"));
}

function escapeAttr(text: string): string {
  return escapeHtml(text).replace(/"/g, "&quot;");
}

// A few named references models actually write; anything else stays literal text.
const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: "\u00a0",
  copy: "©",
  reg: "®",
  trade: "™",
  hellip: "…",
  mdash: "—",
  ndash: "–",
  laquo: "«",
  raquo: "»",
  times: "×",
  deg: "°",
  middot: "·",
  bull: "•",
  euro: "€",
  rarr: "→",
  larr: "←",
};

const ENTITY_RE = /&(#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});/g;

function codePointText(cp: number): string | undefined {
  // Telegram and JS both reject lone surrogates and out-of-range code points.
  if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return "\ufffd";
  return String.fromCodePoint(cp);
}

/** Decodes numeric and a few named character references, as CommonMark does in text. */
function decodeEntities(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(ENTITY_RE, (whole, body: string) => {
    if (body[0] === "#") {
      const hex = body[1] === "x" || body[1] === "X";
      return codePointText(Number.parseInt(body.slice(hex ? 2 : 1), hex ? 16 : 10)) ?? whole;
    }
    return NAMED_ENTITIES[body] ?? whole;
  });
}

const TAG_RE = /<[^>]*>/g;
const HTML_ENTITY_RE = /&(lt|gt|amp|quot|#\d{1,7}|#[xX][0-9a-fA-F]{1,6});/g;

/** The text Telegram shows for an HTML message: tags removed, entities decoded. */
export function visibleText(html: string): string {
  return html.replace(TAG_RE, "").replace(HTML_ENTITY_RE, (whole, body: string) => {
    if (body === "lt") return "<";
    if (body === "gt") return ">";
    if (body === "amp") return "&";
    if (body === "quot") return '"';
    const hex = body[1] === "x" || body[1] === "X";
    return codePointText(Number.parseInt(body.slice(hex ? 2 : 1), hex ? 16 : 10)) ?? whole;
  });
}

/** Number of characters Telegram counts for an HTML text after parsing (UTF-16 units of the text with tags removed and entities decoded). */
export function visibleLength(html: string): number {
  return visibleText(html).length;
}

// ---------------------------------------------------------------------------
// Lexing

export function normalize(markdown: string): string {
  return markdown.replace(/\r\n?/g, "\n");
}

/** Lexes with GFM on, independent of anyone's global `marked` options; `links` lets a fragment resolve reference links defined elsewhere in the answer. */
export function lex(src: string, links?: Links): TokensList {
  const lexer = new Lexer({ ...getDefaults(), gfm: true, breaks: false, pedantic: false });
  if (links) Object.assign(lexer.tokens.links, links);
  return lexer.lex(src);
}

// ---------------------------------------------------------------------------
// Rendering

interface RenderContext {
  /** Telegram forbids nested blockquotes, so an inner quote renders flat. */
  inQuote: boolean;
  /** Telegram forbids code (and links) inside a link. */
  inLink: boolean;
}

export const TOP: RenderContext = { inQuote: false, inLink: false };

/** An http(s) URL normalized for an href, or undefined for anything else (javascript:, tg:, relative, ...). */
function safeHref(href: string): string | undefined {
  const trimmed = href.trim();
  const control = [...trimmed].some((c) => c.charCodeAt(0) < 0x20 || c === "\u007f");
  if (!/^https?:\/\/[^\s]/i.test(trimmed) || control) {
    return undefined;
  }
  try {
    const url = new URL(trimmed);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : undefined;
  } catch {
    return undefined;
  }
}

function cleanLang(lang: string | undefined): string {
  const word = (lang ?? "").trim().split(/\s+/)[0] ?? "";
  return word.replace(/[^A-Za-z0-9_+#.-]/g, "").slice(0, 32);
}

export function renderCode(text: string, lang: string | undefined): string {
  if (text === "") return "";
  const clean = cleanLang(lang);
  const body = escapeHtml(text);
  return clean ? `<pre><code class="language-${clean}">${body}</code></pre>` : `<pre>${body}</pre>`;
}

export function wrap(tag: string, inner: string): string {
  // An empty entity is useless and some clients choke on it.
  return inner === "" ? "" : `<${tag}>${inner}</${tag}>`;
}

function renderLink(
  href: string,
  label: Token[],
  fallbackText: string,
  ctx: RenderContext,
): string {
  const inner = renderInline(label, { ...ctx, inLink: true }) || escapeHtml(fallbackText || href);
  if (ctx.inLink) return inner;
  const safe = safeHref(href);
  if (safe) return `<a href="${escapeAttr(safe)}">${inner}</a>`;
  // Not a link Telegram should open: keep the words and show the target as plain text.
  const shown = visibleText(inner);
  if (shown === href || `mailto:${shown}` === href || href === "") return inner;
  return `${inner} (${escapeHtml(href)})`;
}

function renderInline(tokens: Token[] | undefined, ctx: RenderContext): string {
  let out = "";
  for (const token of tokens ?? []) {
    const t = token as MarkedToken;
    switch (t.type) {
      case "text":
        // `raw`, not `text`: marked pre-escapes `text` when it holds a numeric reference.
        out += t.tokens ? renderInline(t.tokens, ctx) : escapeHtml(decodeEntities(t.raw));
        break;
      case "escape":
        out += escapeHtml(t.text);
        break;
      case "strong":
        out += wrap("b", renderInline(t.tokens, ctx));
        break;
      case "em":
        out += wrap("i", renderInline(t.tokens, ctx));
        break;
      case "del":
        out += wrap("s", renderInline(t.tokens, ctx));
        break;
      case "codespan":
        out += ctx.inLink ? escapeHtml(t.text) : wrap("code", escapeHtml(t.text));
        break;
      case "br":
        out += "\n";
        break;
      case "link":
        out += renderLink(t.href, t.tokens, t.text, ctx);
        break;
      case "image": {
        const alt = decodeEntities(t.text).trim() || "image";
        out += renderLink(t.href, [{ type: "text", raw: alt, text: alt }], alt, ctx);
        break;
      }
      case "checkbox":
        out += t.checked ? "☑ " : "☐ ";
        break;
      default:
        // Raw HTML and anything unknown is shown as the text it is, never as markup.
        out += escapeHtml(token.raw ?? "");
    }
  }
  return out;
}

/** Plain text of inline tokens, for table cells inside `<pre>`. */
function plainInline(tokens: Token[] | undefined): string {
  let out = "";
  for (const token of tokens ?? []) {
    const t = token as MarkedToken;
    switch (t.type) {
      case "text":
        out += t.tokens ? plainInline(t.tokens) : decodeEntities(t.raw);
        break;
      case "escape":
      case "codespan":
        out += t.text;
        break;
      case "strong":
      case "em":
      case "del":
        out += plainInline(t.tokens);
        break;
      case "br":
        out += " ";
        break;
      case "link": {
        const label = plainInline(t.tokens);
        out += label === t.href || `mailto:${label}` === t.href ? label : `${label} (${t.href})`;
        break;
      }
      case "image":
        out += `${t.text || "image"} (${t.href})`;
        break;
      default:
        out += token.raw ?? "";
    }
  }
  return out.replace(/\s*\n\s*/g, " ");
}

function pad(text: string, width: number, align: "center" | "left" | "right" | null): string {
  const gap = width - [...text].length;
  if (gap <= 0) return text;
  if (align === "right") return " ".repeat(gap) + text;
  if (align === "center") {
    const left = Math.floor(gap / 2);
    return " ".repeat(left) + text + " ".repeat(gap - left);
  }
  return text + " ".repeat(gap);
}

/** The table as aligned plain-text lines: header, rule, then one line per row. */
export function tableLines(t: Tokens.Table): string[] {
  const rows = [t.header, ...t.rows].map((row) => row.map((cell) => plainInline(cell.tokens)));
  // Loops, not Math.max(...spread): a table can have more rows than a call has arguments.
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, c) => (widths[c] = Math.max(widths[c] ?? 1, [...cell].length)));
  }
  const line = (cells: string[]) =>
    widths.map((w, c) => pad(cells[c] ?? "", w, t.align[c] ?? null)).join(" | ").trimEnd();
  const [header, ...body] = rows;
  return [line(header), widths.map((w) => "-".repeat(w)).join("-+-"), ...body.map(line)];
}

function renderTable(t: Tokens.Table): string {
  return `<pre>${escapeHtml(tableLines(t).join("\n"))}</pre>`;
}

function indentLines(html: string, indent: string): string {
  return html.replace(/\n/g, `\n${indent}`);
}

function listStart(list: Tokens.List): number {
  return typeof list.start === "number" ? list.start : 1;
}

export function renderListItem(
  list: Tokens.List,
  index: number,
  ctx: RenderContext,
  depth: number,
) {
  const item = list.items[index];
  const indent = LIST_INDENT.repeat(depth);
  let marker = list.ordered ? `${listStart(list) + index}. ` : "• ";
  if (item.task) marker += item.checked ? "☑ " : "☐ ";
  const continuation = indent + " ".repeat(marker.length);
  let out = indent + marker;
  let first = true;
  for (const child of item.tokens) {
    const c = child as MarkedToken;
    if (c.type === "space" || c.type === "checkbox") continue;
    if (c.type === "list") {
      const nested = renderList(c, ctx, depth + 1);
      if (nested) out += `\n${nested}`;
      first = false;
      continue;
    }
    const html = renderBlock(child, ctx, depth);
    if (!html) continue;
    // Code and quotes keep their own line breaks; prose lines align under the item text.
    const own = html.startsWith("<pre>") || html.startsWith("<blockquote>");
    const block = own ? html : indentLines(html, continuation);
    out += first ? block : `\n${own ? "" : continuation}${block}`;
    first = false;
  }
  return out;
}

function renderList(list: Tokens.List, ctx: RenderContext, depth = 0): string {
  return list.items.map((_, i) => renderListItem(list, i, ctx, depth)).join("\n");
}

export function renderBlock(token: Token, ctx: RenderContext, depth = 0): string {
  const t = token as MarkedToken;
  switch (t.type) {
    case "space":
    case "def":
    case "checkbox":
      return "";
    case "paragraph":
      return renderInline(t.tokens, ctx);
    case "text":
      return t.tokens ? renderInline(t.tokens, ctx) : escapeHtml(decodeEntities(t.text));
    case "heading":
      return wrap("b", renderInline(t.tokens, ctx));
    case "code":
      return renderCode(t.text, t.lang);
    case "blockquote": {
      const inner = renderBlocks(t.tokens, { ...ctx, inQuote: true });
      return ctx.inQuote ? inner : wrap("blockquote", inner);
    }
    case "list":
      return renderList(t, ctx, depth);
    case "table":
      return renderTable(t);
    case "hr":
      return HR_TEXT;
    case "html":
      return escapeHtml(t.raw.trim());
    default:
      return escapeHtml((token.raw ?? "").trim());
  }
}

export function renderBlocks(tokens: Token[], ctx: RenderContext): string {
  return tokens.map((t) => renderBlock(t, ctx)).filter((html) => html !== "").join("\n\n");
}

export function renderMarkdown(src: string, links?: Links): string {
  try {
    return renderBlocks(lex(src, links), TOP);
  } catch {
    // marked gives up on pathological input; plain text is still a valid message.
    return escapeHtml(src);
  }
}

/** Telegram HTML for a Markdown string (no splitting). Always well-formed, also for half-written Markdown (an unclosed fence runs to the end, an unclosed `**` stays literal). */
export function markdownToHtml(markdown: string): string {
  return renderMarkdown(normalize(markdown));
}
