/**
 * Rich messages (Bot API 10.1) for the fake Bot API server: an `InputRichMessage` with
 * `markdown` (what the bot sends) becomes the `RichMessage` blocks Telegram returns,
 * checked against the documented limits (32768 characters of text, 500 blocks, 16 levels
 * of nesting, 20 table columns, exactly one of html/markdown/blocks). Rich `html` and
 * ready-made `blocks` are not modelled: they are refused with a 400 that says so.
 *
 * Telegram parses rich Markdown as GitHub-flavoured Markdown; here `marked` (the same
 * lexer the bot uses for its HTML fallback, so the fake stays independent of the bot's
 * own rendering) gives the block structure, mapped to Telegram's block and text types.
 * Inline HTML tags that rich HTML documents format their content; others stay as text.
 *
 * Not documented, so modelled (each error text follows telegram-bot-api's style):
 * - the limit errors: "rich message text is too long", "rich message has too many
 *   blocks", "rich message nesting is too deep", "table has too many columns";
 * - an empty message: "rich message is empty";
 * - media blocks (`![](https://…)` alone in a paragraph) are fetched by Telegram; the fake
 *   has no network, so they fail like a URL Telegram cannot download: "failed to get HTTP
 *   URL content". An image inside text stays its alt text.
 */
import { getDefaults, Lexer, type MarkedToken, type Token, type Tokens } from "marked";
import { FormatError } from "./telegram_html.ts";

type Json = Record<string, unknown>;
/** RichText as the Bot API returns it: a string, an array, or a typed object. */
type RichText = string | RichText[] | Json;

const RICH_TEXT_LIMIT = 32768;
const RICH_BLOCK_LIMIT = 500;
const RICH_DEPTH_LIMIT = 16;
const RICH_COLUMN_LIMIT = 20;

/** The parsed message: its blocks and the text a user sees (what the limits count). */
export interface RichContent {
  blocks: Json[];
  text: string;
}

/** Every tag rich HTML documents: inline HTML in rich Markdown formats with these. */
const SUPPORTED_HTML_TAGS = new Set(
  ("p h1 h2 h3 h4 h5 h6 pre footer blockquote aside li tr details figure tg-math-block " +
    "tg-thinking hr br img input tg-map a b strong i em u ins s strike del code mark sub sup " +
    "tg-spoiler tg-reference tg-emoji tg-time tg-math tg-collage tg-slideshow tg-document " +
    "tg-button tg-button-row ul ol cite video audio figcaption table caption th td summary span")
    .split(" "),
);

/**
 * Parses an `InputRichMessage` (already JSON-decoded). Throws FormatError (the
 * description without "Bad Request: ").
 */
export function parseRichMessage(input: unknown): RichContent {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new FormatError("object expected as rich message");
  }
  const value = input as Json;
  const given = ["html", "markdown", "blocks"].filter((f) => value[f] !== undefined);
  if (given.length !== 1) {
    throw new FormatError("exactly one of the fields html, markdown or blocks must be specified");
  }
  if (value.markdown === undefined) {
    throw new FormatError(`FakeTelegram does not model rich messages by ${given[0]}`);
  }
  if (typeof value.markdown !== "string") {
    throw new FormatError(`field "markdown" must be of type String`);
  }
  const blocks = markdownBlocks(value.markdown.replace(/\r\n?/g, "\n"), 0);
  const text = blocksText(blocks).trim();
  if (blocks.length === 0 || (text === "" && !blocks.some((b) => b.type === "divider"))) {
    throw new FormatError("rich message is empty");
  }
  if ([...text].length > RICH_TEXT_LIMIT) throw new FormatError("rich message text is too long");
  if (countBlocks(blocks) > RICH_BLOCK_LIMIT) {
    throw new FormatError("rich message has too many blocks");
  }
  if (depth(blocks) > RICH_DEPTH_LIMIT) throw new FormatError("rich message nesting is too deep");
  return { blocks, text };
}

// ---------------------------------------------------------------------------
// Markdown

function lex(src: string): Token[] {
  return new Lexer({ ...getDefaults(), gfm: true, breaks: false }).lex(src);
}

/** Joins rich text parts flat: one string stays a string, adjacent strings merge. */
function joinText(parts: RichText[]): RichText {
  const out: RichText[] = [];
  for (const part of parts.flatMap((p) => Array.isArray(p) ? p : [p])) {
    if (part === "") continue;
    if (typeof part === "string" && typeof out.at(-1) === "string") {
      out[out.length - 1] = (out.at(-1) as string) + part;
    } else out.push(part);
  }
  if (out.length === 0) return "";
  return out.length === 1 ? out[0] : out;
}

const INLINE_MARKS: [RegExp, (inner: string) => RichText][] = [
  [/==([^=\n]+)==/, (inner) => ({ type: "marked", text: inner })],
  [/\|\|([^|\n]+)\|\|/, (inner) => ({ type: "spoiler", text: inner })],
  [/\$([^$\n]+)\$/, (inner) => ({ type: "mathematical_expression", expression: inner })],
];

/** Plain text with Telegram's extra inline syntax (==marked==, ||spoiler||, $math$). */
function textWithMarks(text: string): RichText {
  for (const [re, make] of INLINE_MARKS) {
    const m = re.exec(text);
    if (m) {
      return joinText([
        textWithMarks(text.slice(0, m.index)),
        make(m[1]),
        textWithMarks(text.slice(m.index + m[0].length)),
      ]);
    }
  }
  return text;
}

function linkText(href: string, text: RichText): RichText {
  if (href.startsWith("mailto:")) {
    return { type: "email_address", text, email_address: href.slice(7) };
  }
  if (href.startsWith("tel:")) return { type: "phone_number", text, phone_number: href.slice(4) };
  if (href.startsWith("#")) return { type: "anchor_link", text, anchor_name: href.slice(1) };
  return { type: "url", text, url: href };
}

function inline(tokens: Token[] | undefined): RichText {
  const parts: RichText[] = [];
  for (const token of tokens ?? []) {
    const t = token as MarkedToken;
    switch (t.type) {
      case "text":
        parts.push(t.tokens ? inline(t.tokens) : textWithMarks(t.text));
        break;
      case "escape":
        parts.push(t.text);
        break;
      case "strong":
        parts.push({ type: "bold", text: inline(t.tokens) });
        break;
      case "em":
        parts.push({ type: "italic", text: inline(t.tokens) });
        break;
      case "del":
        parts.push({ type: "strikethrough", text: inline(t.tokens) });
        break;
      case "codespan":
        parts.push({ type: "code", text: t.text });
        break;
      case "br":
        parts.push("\n");
        break;
      case "link":
        parts.push(linkText(t.href, inline(t.tokens)));
        break;
      case "image":
        parts.push(t.text);
        break;
      case "html": {
        // Supported tags format their content; others are shown as written.
        const name = /^<\/?([a-zA-Z][a-zA-Z0-9-]*)/.exec(t.raw)?.[1]?.toLowerCase();
        if (!name || !SUPPORTED_HTML_TAGS.has(name)) parts.push(t.raw);
        break;
      }
      default:
        parts.push(token.raw ?? "");
    }
  }
  return joinText(parts);
}

function isMediaParagraph(t: Tokens.Paragraph): boolean {
  const meaningful = t.tokens.filter((c) => !(c.type === "text" && !c.raw.trim()));
  return meaningful.length === 1 && meaningful[0].type === "image";
}

function markdownBlocks(src: string, level: number): Json[] {
  let tokens: Token[];
  try {
    tokens = lex(src);
  } catch {
    return src.trim() ? [{ type: "paragraph", text: src }] : [];
  }
  return tokensToBlocks(tokens, level);
}

function tokensToBlocks(tokens: Token[], level: number): Json[] {
  const blocks: Json[] = [];
  for (const token of tokens) {
    const t = token as MarkedToken;
    switch (t.type) {
      case "space":
      case "def":
        break;
      case "paragraph": {
        const math = /^\$\$([\s\S]+)\$\$$/.exec(t.raw.trim());
        if (math) {
          blocks.push({ type: "mathematical_expression", expression: math[1].trim() });
        } else if (isMediaParagraph(t)) {
          throw new FormatError("failed to get HTTP URL content");
        } else blocks.push({ type: "paragraph", text: inline(t.tokens) });
        break;
      }
      case "text":
        blocks.push({
          type: "paragraph",
          text: t.tokens ? inline(t.tokens) : textWithMarks(t.text),
        });
        break;
      case "heading":
        blocks.push({ type: "heading", text: inline(t.tokens), size: Math.min(6, t.depth) });
        break;
      case "code":
        if (t.lang?.trim() === "math") {
          blocks.push({ type: "mathematical_expression", expression: t.text });
        } else {
          const language = t.lang?.trim().split(/\s+/)[0];
          blocks.push({ type: "pre", text: t.text, ...(language ? { language } : {}) });
        }
        break;
      case "hr":
        blocks.push({ type: "divider" });
        break;
      case "blockquote":
        blocks.push({ type: "blockquote", blocks: tokensToBlocks(t.tokens, level + 1) });
        break;
      case "list":
        blocks.push({
          type: "list",
          items: t.items.map((item, i) => {
            const number = (typeof t.start === "number" ? t.start : 1) + i;
            return {
              label: t.ordered ? `${number}.` : "•",
              blocks: tokensToBlocks(item.tokens.filter((c) => c.type !== "checkbox"), level + 1),
              ...(item.task ? { has_checkbox: true } : {}),
              ...(item.checked ? { is_checked: true } : {}),
              ...(t.ordered ? { value: number, type: "1" } : {}),
            };
          }),
        });
        break;
      case "table": {
        if (t.header.length > RICH_COLUMN_LIMIT) {
          throw new FormatError("table has too many columns");
        }
        const cell = (c: Tokens.TableCell, header: boolean, column: number) => ({
          text: inline(c.tokens),
          ...(header ? { is_header: true } : {}),
          align: t.align[column] ?? "left",
          valign: "top",
        });
        blocks.push({
          type: "table",
          cells: [
            t.header.map((c, i) => cell(c, true, i)),
            ...t.rows.map((row) => row.map((c, i) => cell(c, false, i))),
          ],
        });
        break;
      }
      case "html": {
        const text = t.raw.replace(/<[^>]*>/g, "").trim();
        if (text) blocks.push({ type: "paragraph", text });
        break;
      }
      default:
        if (token.raw?.trim()) blocks.push({ type: "paragraph", text: token.raw.trim() });
    }
  }
  return blocks;
}

// ---------------------------------------------------------------------------
// Measuring

/** The text a user sees in rich text: strings and formula sources. */
function richTextPlain(text: unknown): string {
  if (typeof text === "string") return text;
  if (Array.isArray(text)) return text.map(richTextPlain).join("");
  if (typeof text !== "object" || text === null) return "";
  const t = text as Json;
  if (typeof t.expression === "string") return t.expression;
  return richTextPlain(t.text);
}

/** The text of blocks, one block per paragraph; table cells joined with " | ". */
function blocksText(blocks: Json[]): string {
  return blocks.map((b) => {
    switch (b.type) {
      case "list":
        return (b.items as Json[]).map((item) =>
          `${item.label} ${blocksText(item.blocks as Json[])}`
        ).join("\n");
      case "blockquote":
        return blocksText((b.blocks as Json[]) ?? []);
      case "table":
        return (b.cells as Json[][]).map((row) => row.map((c) => richTextPlain(c.text)).join(" | "))
          .join("\n");
      case "mathematical_expression":
        return String(b.expression);
      case "divider":
        return "";
      default:
        return richTextPlain(b.text);
    }
  }).join("\n\n");
}

/** Blocks as Telegram counts them: nested blocks, list items and table rows included. */
function countBlocks(blocks: Json[]): number {
  let n = 0;
  for (const b of blocks) {
    n++;
    if (b.type === "list") {
      for (const item of b.items as Json[]) n += 1 + countBlocks(item.blocks as Json[]);
    } else if (b.type === "table") n += (b.cells as unknown[]).length;
    else if (Array.isArray(b.blocks)) n += countBlocks(b.blocks as Json[]);
  }
  return n;
}

function textDepth(text: unknown): number {
  if (Array.isArray(text)) return Math.max(0, ...text.map(textDepth));
  if (typeof text === "object" && text !== null && "text" in text) {
    return 1 + textDepth((text as Json).text);
  }
  return 0;
}

/** Levels of nested blocks and formatting. */
function depth(blocks: Json[]): number {
  let max = 0;
  for (const b of blocks) {
    let d = 1 + textDepth(b.text);
    if (b.type === "list") {
      for (const item of b.items as Json[]) d = Math.max(d, 1 + depth(item.blocks as Json[]));
    } else if (Array.isArray(b.blocks)) d = Math.max(d, 1 + depth(b.blocks as Json[]));
    max = Math.max(max, d);
  }
  return max;
}
