/**
 * Splitting an answer into messages that fit Telegram's limits without losing text: at
 * block boundaries first (paragraph, list, code block, table), inside a block only when
 * it is longer than the limit. Each chunk carries its Telegram HTML (`render.ts`) and its
 * Markdown source, and a rich-message variant splits by Telegram's block budget too.
 */
import type { Links, MarkedToken, Token, Tokens, TokensList } from "marked";
import {
  escapeHtml,
  lex,
  normalize,
  renderBlock,
  renderBlocks,
  renderCode,
  renderListItem,
  renderMarkdown,
  tableLines,
  TOP,
  visibleLength,
  visibleText,
  wrap,
} from "./render.ts";

/** One Telegram message's worth of an answer. `html` is for parse_mode "HTML"; `text` is the same part of the answer as plain text (the Markdown source of that part), used when Telegram rejects the HTML. */
export interface Chunk {
  html: string;
  text: string;
}

/** Telegram's limit for a message text, in UTF-16 code units after entity parsing. */
export const TELEGRAM_TEXT_LIMIT = 4096;

/** Smallest limit `splitForTelegram` accepts: below it code fences and list markers stop making sense. */
export const MIN_SPLIT_LIMIT = 16;

/** A piece of the answer that is never split further by the grouping step. */
interface Unit {
  html: string;
  vis: number;
  text: string;
  /** Offsets in the answer when `text` is an exact slice of it, to keep the original whitespace between neighbours. */
  start?: number;
  end?: number;
  /** Items of one list (the list token) join with a single newline instead of a blank line. */
  group?: object;
  /** Headings move to the next message rather than end one. */
  keepWithNext?: boolean;
}

function makeUnit(html: string, text: string, extra: Partial<Unit> = {}): Unit {
  return { html, vis: visibleLength(html), text, ...extra };
}

function unitFits(u: Unit, limit: number): boolean {
  return u.vis <= limit && u.text.length <= limit;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Whether cutting `text` before index `at` keeps surrogate pairs and `&...;` references whole. */
function safeCut(text: string, at: number): boolean {
  if (at <= 0 || at >= text.length) return true;
  if (isHighSurrogate(text.charCodeAt(at - 1)) && isLowSurrogate(text.charCodeAt(at))) return false;
  // A reference is at most 33 code units long, so look back no further.
  let amp = at - 1;
  while (amp >= 0 && amp >= at - 33 && text[amp] !== "&") amp--;
  if (amp >= 0 && text[amp] === "&") {
    const m = /^&(#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});/.exec(
      text.slice(amp, amp + 34),
    );
    if (m && at < amp + m[0].length) return false;
  }
  return true;
}

/** Cuts `text` into plain pieces of at most `size` code units, on safe boundaries. */
function hardPieces(text: string, maxSize: number): string[] {
  const size = Math.max(2, maxSize);
  const out: string[] = [];
  let pos = 0;
  while (pos < text.length) {
    let end = Math.min(text.length, pos + size);
    while (end > pos + 1 && !safeCut(text, end)) end--;
    // A size of 1 cannot hold a surrogate pair; MIN_SPLIT_LIMIT rules that out.
    out.push(text.slice(pos, end));
    pos = end;
  }
  return out;
}

function plainUnits(text: string, limit: number, base?: number): Unit[] {
  const units: Unit[] = [];
  let offset = 0;
  for (const piece of hardPieces(text, limit)) {
    const offsets = base === undefined
      ? {}
      : { start: base + offset, end: base + offset + piece.length };
    if (piece.trim()) units.push(makeUnit(escapeHtml(piece), piece, offsets));
    offset += piece.length;
  }
  return units;
}

// ----- fenced code inside containers (list items, quotes) for the generic splitter

interface OpenFence {
  /** The line that opened the block, reused to reopen it in the next piece. */
  openLine: string;
  /** A line that closes it, with the same container prefix. */
  closeLine: string;
  fence: string;
  quoteDepth: number;
}

const FENCE_LINE_RE = /^((?:[ \t]*>[ \t]?)*)([ \t]*)(`{3,}|~{3,})(.*)$/;

/** For each line of `text`: its start offset and the fence open before and after it. */
function fenceMap(text: string) {
  const starts: number[] = [];
  const before: (OpenFence | undefined)[] = [];
  const after: (OpenFence | undefined)[] = [];
  let open: OpenFence | undefined;
  let offset = 0;
  for (const line of text.split("\n")) {
    starts.push(offset);
    before.push(open);
    const m = FENCE_LINE_RE.exec(line);
    const depth = (line.match(/^(?:[ \t]*>)*/)?.[0].match(/>/g) ?? []).length;
    if (open) {
      if (open.quoteDepth > 0 && depth < open.quoteDepth) open = undefined; // the quote ended
      else if (
        m && m[3][0] === open.fence[0] && m[3].length >= open.fence.length && !m[4].trim()
      ) {
        open = undefined;
        after.push(undefined);
        offset += line.length + 1;
        continue;
      }
    }
    if (!open && m && !(m[3][0] === "`" && m[4].includes("`"))) {
      open = {
        openLine: line,
        closeLine: m[1] + m[2] + m[3],
        fence: m[3],
        quoteDepth: (m[1].match(/>/g) ?? []).length,
      };
    }
    after.push(open);
    offset += line.length + 1;
  }
  /** The fence open at a cut before index `at`. */
  return (at: number): OpenFence | undefined => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= at) lo = mid;
      else hi = mid - 1;
    }
    return starts[lo] === at ? before[lo] : after[lo];
  };
}

function dedent(text: string): string {
  let common = Infinity;
  for (const l of text.split("\n")) {
    if (l.trim()) common = Math.min(common, /^ */.exec(l)![0].length);
  }
  if (!Number.isFinite(common) || common === 0) return text;
  return text.split("\n").map((l) => l.slice(Math.min(common, /^ */.exec(l)![0].length))).join(
    "\n",
  );
}

/** Index after the whitespace that follows a cut at `at`: blank lines always, spaces only mid-line (they may be code indentation). */
function skipAfterCut(text: string, at: number): number {
  let p = at;
  if (text[p] !== "\n") { while (p < text.length && (text[p] === " " || text[p] === "\t")) p++; }
  if (text[p] === "\n") p++;
  for (;;) {
    const m = /^[ \t]*\n/.exec(text.slice(p, p + 200));
    if (!m) break;
    p += m[0].length;
  }
  // Whitespace to the end is nothing to send.
  return text.slice(p).trim() ? p : text.length;
}

type Range = [number, number];

/** Candidate cut positions in (from, to], best kind first: blank line, line, sentence, word. */
function cutCandidates(text: string, from: number, to: number): number[][] {
  const para: number[] = [];
  const line: number[] = [];
  const sentence: number[] = [];
  const word: number[] = [];
  for (let i = from + 1; i <= to; i++) {
    const c = text[i];
    if (i === text.length) break;
    if (c === "\n") {
      (/^\n[ \t]*\n/.test(text.slice(i, i + 100)) ? para : line).push(i);
    } else if (c === " " || c === "\t") {
      const prev = text[i - 1];
      if (prev === " " || prev === "\t" || prev === "\n") continue;
      if (/[.!?…。！？][)\]"'”’»*_]*$/.test(text.slice(Math.max(from, i - 4), i))) sentence.push(i);
      else word.push(i);
    } else if (/[。！？]/.test(text[i - 1]) && safeCut(text, i)) {
      sentence.push(i); // CJK sentences need no space
    }
  }
  return [para, line, sentence, word];
}

/**
 * Splits one block's Markdown source into pieces that each fit, preferring blank lines, then
 * lines, sentences, words, and cutting hard only when nothing else fits. A fenced code block
 * cut in the middle is closed at the end of one piece and reopened at the start of the next.
 * Each piece is rendered on its own, so its HTML is complete; Markdown markers that straddle
 * a cut (`**` ... `**`) show literally, which is why cuts inside `avoid` ranges come last.
 */
function splitSource(
  text: string,
  base: number,
  limit: number,
  links: Links,
  avoid: Range[] = [],
  render: (piece: string) => string = (piece) => renderMarkdown(dedent(piece), links),
): Unit[] {
  const fenceAt = fenceMap(text);
  const units: Unit[] = [];
  const avoided = new Uint8Array(text.length + 1);
  for (const [s, e] of avoid) avoided.fill(1, s + 1, e);

  const piece = (from: number, to: number): Unit | undefined => {
    const slice = text.slice(from, to).trimEnd();
    if (!slice.trim()) return undefined;
    const open = fenceAt(from);
    const close = fenceAt(to);
    const pieceText = (open ? open.openLine + "\n" : "") + slice +
      (close ? "\n" + close.closeLine : "");
    const offsets = open || close ? {} : { start: base + from, end: base + from + slice.length };
    return makeUnit(render(pieceText), pieceText, offsets);
  };

  let pos = 0;
  while (pos < text.length) {
    if (!text.slice(pos).trim()) break;
    // The rest can only fit when its source does (the text of a piece is its source).
    const whole = text.length - pos <= limit ? piece(pos, text.length) : undefined;
    if (whole && unitFits(whole, limit)) {
      units.push(whole);
      break;
    }
    const cache = new Map<number, Unit | undefined>();
    const fits = (at: number) => {
      if (!cache.has(at)) cache.set(at, piece(pos, at));
      const u = cache.get(at);
      return u !== undefined && unitFits(u, limit);
    };
    /** Largest candidate that fits, assuming longer pieces never render shorter. */
    const largest = (cands: number[]): number | undefined => {
      if (cands.length === 0) return undefined;
      if (fits(cands[cands.length - 1])) return cands[cands.length - 1];
      let lo = 0;
      let hi = cands.length - 2;
      let found: number | undefined;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (fits(cands[mid])) {
          found = cands[mid];
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return found;
    };

    const to = Math.min(text.length - 1, pos + limit);
    const kinds = cutCandidates(text, pos, to);
    const hard: number[] = [];
    for (let i = pos + 1; i <= to; i++) if (safeCut(text, i)) hard.push(i);
    const levels = [...kinds.map((c) => c.filter((at) => !avoided[at])), ...kinds];
    // A natural cut that leaves a piece under half full is taken only when no better natural
    // cut fits; a hard cut only when no natural cut fits at all.
    const wanted = pos + Math.floor(limit / 2);
    let best: number | undefined;
    for (const level of levels) {
      const at = largest(level);
      if (at === undefined) continue;
      if (at >= wanted) {
        best = at;
        break;
      }
      best = Math.max(best ?? 0, at);
    }
    best ??= largest(hard);
    if (best === undefined) {
      // Nothing renders small enough (tiny limit, long fences): send the source as plain text.
      const end = hardPieces(text.slice(pos), limit)[0].length + pos;
      units.push(...plainUnits(text.slice(pos, end), limit, base + pos));
      pos = skipAfterCut(text, end);
      continue;
    }
    const u = cache.get(best);
    if (u) units.push(u);
    pos = skipAfterCut(text, best);
  }
  return units;
}

/** Splits a code block at line boundaries; every part is a complete fenced block again. */
function splitCode(t: Tokens.Code, whole: Unit, limit: number): Unit[] {
  const m = /^ {0,3}(`{3,}|~{3,})([^\n]*)/.exec(whole.text);
  let open = m ? m[1] + m[2].trim() : "";
  let close = m ? m[1] : "";
  let indent = m ? "" : "    ";
  const overhead = () => (open ? open.length + close.length + 2 : 0);
  // With a tiny limit, give up the language, then the fences, rather than the content.
  if (open && overhead() > limit / 2) open = close;
  if (open && overhead() > limit / 2) open = close = "";
  if (!m && limit < 64) indent = "";
  const budget = limit - overhead();

  const lines: string[] = [];
  for (const line of t.text.split("\n")) {
    if (indent.length + line.length <= budget) lines.push(line);
    else lines.push(...hardPieces(line, budget - indent.length));
  }

  const units: Unit[] = [];
  const flush = (part: string[]) => {
    if (part.length === 0) return;
    const content = part.join("\n");
    const body = part.map((l) => indent + l).join("\n");
    const text = open ? `${open}\n${body}\n${close}` : body;
    if (text.trim()) units.push(makeUnit(renderCode(content, t.lang), text));
  };
  let part: string[] = [];
  let size = 0;
  for (const line of lines) {
    const add = (part.length ? 1 : 0) + indent.length + line.length;
    if (part.length && size + add > budget) {
      flush(part);
      part = [];
      size = 0;
    }
    size += (part.length ? 1 : 0) + indent.length + line.length;
    part.push(line);
  }
  flush(part);
  return units;
}

/** Splits a table between rows; each part is a `<pre>` of its aligned rows, its text the source rows. */
function splitTable(t: Tokens.Table, whole: Unit, limit: number): Unit[] {
  const raw = whole.text.split("\n");
  let aligned = tableLines(t);
  // Should the source not be one line per row, show the source itself ("the raw table").
  if (aligned.length !== raw.length) aligned = raw;
  const base = whole.start ?? 0;
  const offsets: number[] = [];
  let offset = 0;
  for (const line of raw) {
    offsets.push(offset);
    offset += line.length + 1;
  }

  const units: Unit[] = [];
  let from = -1;
  let vis = 0;
  let len = 0;
  const flush = (to: number) => {
    if (from < 0) return;
    const text = raw.slice(from, to).join("\n");
    const html = `<pre>${escapeHtml(aligned.slice(from, to).join("\n"))}</pre>`;
    const start = base + offsets[from];
    units.push(makeUnit(html, text, { start, end: start + text.length }));
    from = -1;
  };
  for (let i = 0; i < raw.length; i++) {
    if (aligned[i].length > limit || raw[i].length > limit) {
      flush(i);
      units.push(
        ...plainUnits(raw[i], limit, base + offsets[i]).map((u) => ({
          ...u,
          html: u.html && `<pre>${u.html}</pre>`,
        })),
      );
      continue;
    }
    if (from >= 0 && (vis + 1 + aligned[i].length > limit || len + 1 + raw[i].length > limit)) {
      flush(i);
    }
    if (from < 0) {
      from = i;
      vis = aligned[i].length;
      len = raw[i].length;
    } else {
      vis += 1 + aligned[i].length;
      len += 1 + raw[i].length;
    }
  }
  flush(raw.length);
  return units.filter((u) => u.text.trim());
}

/** Splits a list between its items (numbering kept); an item too long alone is split as source. */
function splitList(t: Tokens.List, whole: Unit, limit: number, links: Links): Unit[] {
  const base = whole.start ?? 0;
  const group = t;
  const units: Unit[] = [];
  let cursor = 0;
  for (let i = 0; i < t.items.length; i++) {
    const itemRaw = t.items[i].raw.trimEnd();
    const at = whole.text.indexOf(itemRaw, cursor);
    if (at < 0 || !itemRaw.trim()) {
      return splitSource(whole.text, base, limit, links);
    }
    cursor = at + itemRaw.length;
    const u = makeUnit(renderListItem(t, i, TOP, 0), itemRaw, {
      start: base + at,
      end: base + at + itemRaw.length,
      group,
    });
    units.push(...(unitFits(u, limit) ? [u] : splitSource(itemRaw, base + at, limit, links)));
  }
  return units;
}

/** Ranges of a paragraph's inline constructs (bold, links, code, ...), where a cut would show markers literally. */
function inlineRanges(t: Token, text: string): Range[] {
  if (t.type !== "paragraph" || !t.tokens) return [];
  const ranges: Range[] = [];
  let offset = 0;
  for (const child of t.tokens) {
    if (!text.startsWith(child.raw, offset)) return ranges;
    if (child.type !== "text" && child.type !== "escape" && child.type !== "br") {
      ranges.push([offset, offset + child.raw.length]);
    }
    offset += child.raw.length;
  }
  return ranges;
}

function splitBlock(t: Token, whole: Unit, limit: number, links: Links): Unit[] {
  const token = t as MarkedToken;
  switch (token.type) {
    case "code":
      return splitCode(token, whole, limit);
    case "table":
      return splitTable(token, whole, limit);
    case "list":
      return splitList(token, whole, limit, links);
    case "blockquote":
      // Every piece stays a quote, also one that starts mid-paragraph without a `>`.
      return splitSource(whole.text, whole.start ?? 0, limit, links, [], (piece) => {
        const inner = piece.replace(/^ {0,3}> ?/gm, "");
        try {
          return wrap("blockquote", renderBlocks(lex(inner, links), { ...TOP, inQuote: true }));
        } catch {
          return wrap("blockquote", escapeHtml(inner));
        }
      });
    default:
      return splitSource(whole.text, whole.start ?? 0, limit, links, inlineRanges(t, whole.text));
  }
}

/** Top-level blocks of the answer as units, each already small enough. */
function blockUnits(src: string, limit: number): Unit[] {
  let tokens: TokensList;
  try {
    tokens = lex(src);
  } catch {
    return plainUnits(src, limit, 0);
  }
  const units: Unit[] = [];
  let pos = 0;
  for (const t of tokens) {
    const start = src.startsWith(t.raw, pos) ? pos : src.indexOf(t.raw, pos);
    // marked's raws tile the source; should that ever fail, fall back to splitting the source.
    if (start < 0) return splitSource(src, 0, limit, tokens.links);
    pos = start + t.raw.length;
    if (t.type === "space") continue;
    const lead = /^(?:[ \t]*\n)*/.exec(t.raw)![0].length;
    const text = t.raw.slice(lead).trimEnd();
    if (!text.trim()) continue;
    const unit = makeUnit(renderBlock(t, TOP), text, {
      start: start + lead,
      end: start + lead + text.length,
      keepWithNext: t.type === "heading",
    });
    if (unitFits(unit, limit)) units.push(unit);
    else units.push(...splitBlock(t, unit, limit, tokens.links));
  }
  return units;
}

/** Packs units greedily into chunks; blocks join with a blank line, list items with a newline. */
function packUnits(units: Unit[], src: string, limit: number): Chunk[] {
  const chunks: Chunk[] = [];
  const htmlSep = (
    a: Unit,
    b: Unit,
  ) => (a.group !== undefined && a.group === b.group ? "\n" : "\n\n");
  const textSep = (a: Unit, b: Unit) =>
    a.end !== undefined && b.start !== undefined && a.end <= b.start
      ? src.slice(a.end, b.start)
      : htmlSep(a, b);

  let cur: Unit[] = [];
  let vis = 0;
  let len = 0;
  let lastHtml: Unit | undefined;
  const reset = () => {
    cur = [];
    vis = 0;
    len = 0;
    lastHtml = undefined;
  };
  const add = (u: Unit) => {
    if (cur.length) len += textSep(cur[cur.length - 1], u).length;
    len += u.text.length;
    if (u.html) {
      if (lastHtml) vis += htmlSep(lastHtml, u).length;
      vis += u.vis;
      lastHtml = u;
    }
    cur.push(u);
  };
  const fitsWith = (u: Unit) => {
    if (!cur.length) return true;
    const moreText = textSep(cur[cur.length - 1], u).length + u.text.length;
    const moreVis = u.html ? (lastHtml ? htmlSep(lastHtml, u).length : 0) + u.vis : 0;
    return vis + moreVis <= limit && len + moreText <= limit;
  };
  const emit = (group: Unit[]) => {
    let html = "";
    let text = "";
    let prevHtml: Unit | undefined;
    group.forEach((u, i) => {
      if (i > 0) text += textSep(group[i - 1], u);
      text += u.text;
      if (u.html) {
        if (prevHtml) html += htmlSep(prevHtml, u);
        html += u.html;
        prevHtml = u;
      }
    });
    chunks.push({ html, text });
  };

  for (const u of units) {
    if (fitsWith(u)) {
      add(u);
      continue;
    }
    const last = cur[cur.length - 1];
    const carried = cur.length > 1 && last.keepWithNext ? cur.pop()! : undefined;
    emit(cur);
    reset();
    if (carried) {
      add(carried);
      if (!fitsWith(u)) {
        emit(cur);
        reset();
      }
    }
    add(u);
  }
  if (cur.length) emit(cur);
  return chunks;
}

/** Splits an answer into chunks: the visible text of each `html` (what Telegram counts after parsing entities, in UTF-16 code units) and each `text` are at most `limit` (default 4096) and non-empty. Splits between blocks (paragraph, list, code block, table) first; a block longer than the limit is split inside: code blocks at line boundaries, each part re-wrapped as its own complete code block (fence/language kept); paragraphs at sentence or word boundaries; as a last resort hard-split (never inside a surrogate pair or an HTML entity). Never breaks a tag: each chunk's html is well-formed on its own. Nothing is lost: joining the chunks' `text` gives back the whole answer's text modulo whitespace at the split points and the re-added code fences.
 *
 * An answer that is empty or only whitespace gives no chunks. A chunk whose HTML would show
 * nothing (only a link definition, say) carries its escaped source instead. Throws a
 * RangeError for a limit below MIN_SPLIT_LIMIT or not an integer.
 */
export function splitForTelegram(markdown: string, limit = TELEGRAM_TEXT_LIMIT): Chunk[] {
  if (!Number.isInteger(limit) || limit < MIN_SPLIT_LIMIT) {
    throw new RangeError(`limit must be an integer of at least ${MIN_SPLIT_LIMIT}, got ${limit}`);
  }
  const src = normalize(markdown);
  if (!src.trim()) return [];
  const chunks: Chunk[] = [];
  for (const chunk of packUnits(blockUnits(src, limit), src, limit)) {
    if (!chunk.text.trim()) continue;
    const html = visibleText(chunk.html).trim() ? chunk.html : escapeHtml(chunk.text);
    if (visibleLength(html) <= limit && chunk.text.length <= limit) {
      chunks.push({ html, text: chunk.text });
    } else {
      // Unreachable by construction; kept so a rendering surprise costs formatting, not text.
      for (const u of plainUnits(chunk.text, limit)) chunks.push({ html: u.html, text: u.text });
    }
  }
  return chunks;
}

// ---------------------------------------------------------------------------
// Rich messages (Bot API 10.1)

/** Telegram's limit for a rich message's text. */
export const RICH_TEXT_LIMIT = 32768;

/**
 * Blocks a rich message may hold. Telegram allows 500, counting nested blocks, list
 * items and table rows; the margin covers what Telegram counts that we do not (a
 * footnote, an HTML block).
 */
export const RICH_BLOCK_BUDGET = 450;

function countBlocks(tokens: Token[]): number {
  let n = 0;
  for (const token of tokens) {
    const t = token as MarkedToken;
    if (t.type === "space" || t.type === "def") continue;
    n++;
    if (t.type === "list") {
      for (const item of t.items) n += 1 + countBlocks(item.tokens);
    } else if (t.type === "table") n += 1 + t.rows.length;
    else if (t.type === "blockquote") n += countBlocks(t.tokens);
  }
  return n;
}

/** About how many blocks Telegram makes of this Markdown (see {@link RICH_BLOCK_BUDGET}). */
export function richBlockCount(markdown: string): number {
  try {
    return countBlocks(lex(markdown));
  } catch {
    return 1;
  }
}

/**
 * The Markdown parts of an answer for rich messages: each at most
 * {@link RICH_TEXT_LIMIT} characters and {@link RICH_BLOCK_BUDGET} blocks, split at
 * block boundaries (a part with too many short blocks is split again, smaller). An
 * answer within both limits is one part, unsplit.
 */
export function richChunks(markdown: string, limit = RICH_TEXT_LIMIT): string[] {
  const src = normalize(markdown).replace(/^\s*\n/, "").trimEnd();
  if (src.length <= limit && richBlockCount(src) <= RICH_BLOCK_BUDGET) {
    return src.trim() ? [src] : [];
  }
  const parts: string[] = [];
  for (const { text } of splitForTelegram(markdown, limit)) {
    if (limit >= 1024 && richBlockCount(text) > RICH_BLOCK_BUDGET) {
      parts.push(...richChunks(text, Math.floor(limit / 2)));
    } else parts.push(text);
  }
  return parts;
}
