/**
 * Telegram's text formatting, as the Bot API applies it to the bot's message text and
 * captions: the HTML parse mode (the bot's only one) and the clean-up TDLib does before
 * a message is sent (control characters, trimming). Ported from the behaviour of
 * TDLib's MessageEntity.cpp and telegram-bot-api's Client.cpp, including their error
 * texts, so a fake server rejects exactly what Telegram rejects.
 *
 * Covered HTML: b/strong, i/em, u/ins, s/strike/del, tg-spoiler, a href (http and https
 * links; an invalid one leaves plain text), code (with class="language-…"), pre and
 * blockquote, HTML entities, and every parse error of those. Not modelled, refused with
 * a 400 that says so: the MarkdownV2 and Markdown parse modes and explicit `entities`.
 * Tags the bot never writes (tg-emoji, tg-time, span, expandable blockquotes) are
 * refused as unsupported. The entities Telegram adds by itself (links, @mentions,
 * /commands, #hashtags) are not added: the bot never reads the entities it sent.
 *
 * Offsets and lengths are in UTF-16 code units (JavaScript string indices); positions in
 * error messages are UTF-8 byte offsets, as Telegram reports them.
 */

/** A MessageEntity as the Bot API returns it. */
export interface Entity {
  offset: number;
  length: number;
  type: string;
  url?: string;
  language?: string;
}

/** Text after parsing, with its entities sorted the way Telegram sorts them. */
export interface FormattedText {
  text: string;
  entities: Entity[];
}

/**
 * A rejected text. `message` is the Bot API description without the "Bad Request: "
 * prefix, e.g. `can't parse entities: Unsupported start tag "h1" at byte offset 0`.
 */
export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FormatError";
  }
}

/**
 * Parses `text` the way sendMessage does with this `parse_mode` (and no `entities`),
 * then cleans it as TDLib does. Throws FormatError with Telegram's wording. An empty
 * result is returned as is: the caller decides whether empty is allowed.
 */
export function formatText(
  text: string,
  parseMode: string | undefined,
  entities: unknown,
): FormattedText {
  if (entities !== undefined) throw new FormatError("FakeTelegram does not model entities");
  if (new TextEncoder().encode(text).length > 1 << 15) throw new FormatError("text is too long");
  const mode = (parseMode ?? "").toLowerCase();
  let parsed: FormattedText = { text, entities: [] };
  if (text !== "" && mode !== "" && mode !== "none") {
    if (mode === "markdownv2" || mode === "markdown") {
      throw new FormatError(`FakeTelegram does not model parse_mode ${parseMode}`);
    }
    if (mode !== "html") throw new FormatError("unsupported parse_mode");
    try {
      parsed = parseHtml(text);
    } catch (e) {
      if (e instanceof ParseError) throw new FormatError(`can't parse entities: ${e.message}`);
      throw e;
    }
  }
  return fixFormattedText(parsed.text, parsed.entities);
}

/** A parse error in TDLib's words, before the Bot API adds "can't parse entities: ". */
class ParseError extends Error {}

const isSpace = (c: string) =>
  c === " " || c === "\t" || c === "\r" || c === "\n" || c === "\0" || c === "\v";
const isDigit = (c: string) => c >= "0" && c <= "9";
const isAlpha = (c: string) => (c >= "a" && c <= "z") || (c >= "A" && c <= "Z");
const isAlnum = (c: string) => isDigit(c) || isAlpha(c);
const isHex = (c: string) => isDigit(c) || (c >= "a" && c <= "f") || (c >= "A" && c <= "F");

/** UTF-8 byte offset of every UTF-16 index of `text` (and of its end). */
function byteOffsets(text: string): number[] {
  const out = new Array<number>(text.length + 1);
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    out[i] = bytes;
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) bytes += 4;
    else if (c >= 0xdc00 && c <= 0xdfff) bytes += 0;
    else bytes += 3;
  }
  out[text.length] = bytes;
  return out;
}

/** Decodes an HTML entity at `pos` (which holds '&'); TDLib's rules, ';' optional. */
function decodeHtmlEntity(text: string, pos: number): { code: number; next: number } | undefined {
  let end = pos + 1;
  let code = 0;
  if (text[pos + 1] === "#") {
    end++;
    if (text[pos + 2] === "x") {
      end++;
      while (end < text.length && isHex(text[end])) {
        code = code * 16 + parseInt(text[end++], 16);
        if (code >= 0x10ffff) return undefined;
      }
    } else {
      while (end < text.length && isDigit(text[end])) {
        code = code * 10 + text.charCodeAt(end++) - 48;
        if (code >= 0x10ffff) return undefined;
      }
    }
    if (code === 0 || code >= 0x10ffff || end - pos >= 10) return undefined;
  } else {
    while (end < text.length && isAlpha(text[end])) end++;
    const name = text.slice(pos + 1, end);
    code = { lt: 60, gt: 62, amp: 38, quot: 34 }[name] ?? 0;
    if (code === 0) return undefined;
  }
  if (text[end] === ";") end++;
  return { code, next: end };
}

/** HTML tags that make one entity of a fixed type. */
const SIMPLE_HTML_TAGS: Record<string, string> = {
  b: "bold",
  strong: "bold",
  i: "italic",
  em: "italic",
  s: "strikethrough",
  strike: "strikethrough",
  del: "strikethrough",
  u: "underline",
  ins: "underline",
  "tg-spoiler": "spoiler",
  blockquote: "blockquote",
};
const HTML_TAGS = new Set([...Object.keys(SIMPLE_HTML_TAGS), "a", "pre", "code"]);

/** Parses Telegram's HTML parse mode. Throws ParseError with TDLib's messages. */
export function parseHtml(text: string): FormattedText {
  const bytes = byteOffsets(text);
  const n = text.length;
  const at = (k: number) => (k < n ? text[k] : "\0");
  let result = "";
  let badSurrogate = false;
  const entities: (Entity & { argument?: string })[] = [];
  interface Open {
    tag: string;
    argument: string;
    offset: number;
  }
  const stack: Open[] = [];
  for (let i = 0; i < n; i++) {
    const c = text[i];
    if (c === "&") {
      const decoded = decodeHtmlEntity(text, i);
      if (decoded) {
        if (decoded.code >= 0xd800 && decoded.code <= 0xdfff) badSurrogate = true;
        result += String.fromCodePoint(decoded.code);
        i = decoded.next - 1;
        continue;
      }
    }
    if (c !== "<") {
      result += c;
      continue;
    }
    const begin = i;
    const beginByte = bytes[begin];
    i++;
    if (at(i) !== "/") {
      while (!isSpace(at(i)) && at(i) !== ">") i++;
      if (i >= n) throw new ParseError(`Unclosed start tag at byte offset ${beginByte}`);
      const tag = text.slice(begin + 1, i).toLowerCase();
      if (!HTML_TAGS.has(tag)) {
        throw new ParseError(`Unsupported start tag "${tag}" at byte offset ${beginByte}`);
      }
      let argument = "";
      while (at(i) !== ">") {
        while (i < n && isSpace(at(i))) i++;
        if (at(i) === ">") break;
        const nameBegin = i;
        while (!isSpace(at(i)) && at(i) !== "=" && at(i) !== ">") i++;
        const name = text.slice(nameBegin, i);
        if (name === "") {
          throw new ParseError(
            `Empty attribute name in the tag "${tag}" at byte offset ${beginByte}`,
          );
        }
        while (i < n && isSpace(at(i))) i++;
        if (at(i) !== "=") {
          if (i >= n) throw new ParseError(`Unclosed start tag at byte offset ${beginByte}`);
          throw new ParseError(
            `Expected equal sign in declaration of an attribute of the tag "${tag}" at byte offset ${beginByte}`,
          );
        }
        i++;
        while (i < n && isSpace(at(i))) i++;
        if (i >= n) {
          throw new ParseError(`Unclosed start tag "${tag}" at byte offset ${beginByte}`);
        }
        let value = "";
        if (at(i) !== "'" && at(i) !== '"') {
          // A name token: letters, digits, periods and hyphens; not case sensitive.
          const tokenBegin = i;
          while (isAlnum(at(i)) || at(i) === "." || at(i) === "-") i++;
          value = text.slice(tokenBegin, i).toLowerCase();
          if (!isSpace(at(i)) && at(i) !== ">") {
            throw new ParseError(
              `Unexpected end of name token at byte offset ${bytes[tokenBegin]}`,
            );
          }
        } else {
          const quote = text[i++];
          while (i < n && text[i] !== quote) {
            if (text[i] === "&") {
              const decoded = decodeHtmlEntity(text, i);
              if (decoded) {
                value += String.fromCodePoint(decoded.code);
                i = decoded.next;
                continue;
              }
            }
            value += text[i++];
          }
          if (at(i) === quote) i++;
        }
        if (i >= n) throw new ParseError(`Unclosed start tag at byte offset ${beginByte}`);
        if (tag === "a" && name === "href") argument = value;
        else if (tag === "code" && name === "class" && value.startsWith("language-")) {
          argument = value.slice(9);
        }
      }
      stack.push({ tag, argument, offset: result.length });
    } else {
      if (stack.length === 0) {
        throw new ParseError(`Unexpected end tag at byte offset ${beginByte}`);
      }
      while (!isSpace(at(i)) && at(i) !== ">") i++;
      const endTag = text.slice(begin + 2, i);
      while (i < n && isSpace(at(i))) i++;
      if (at(i) !== ">") throw new ParseError(`Unclosed end tag at byte offset ${beginByte}`);
      const open = stack[stack.length - 1];
      if (endTag !== "" && endTag !== open.tag) {
        throw new ParseError(
          `Unmatched end tag at byte offset ${beginByte}, expected "</${open.tag}>", found "</${endTag}>"`,
        );
      }
      stack.pop();
      const offset = open.offset;
      const length = result.length - offset;
      if (length <= 0) continue;
      const last = entities[entities.length - 1];
      const simple = SIMPLE_HTML_TAGS[open.tag];
      if (simple) {
        entities.push({ offset, length, type: simple });
        continue;
      }
      switch (open.tag) {
        case "a": {
          // An invalid link leaves its text plain.
          const link = checkLink(open.argument === "" ? result.slice(offset) : open.argument);
          if ("url" in link) entities.push({ offset, length, type: "text_link", url: link.url });
          break;
        }
        case "pre":
          if (
            last?.type === "code" && last.offset === offset && last.length === length &&
            last.argument
          ) {
            last.type = "pre";
            last.language = last.argument;
          } else entities.push({ offset, length, type: "pre" });
          break;
        case "code":
          if (
            last?.type === "pre" && last.offset === offset && last.length === length &&
            open.argument
          ) {
            last.language = open.argument;
          } else entities.push({ offset, length, type: "code", argument: open.argument });
          break;
      }
    }
  }
  if (stack.length > 0) {
    throw new ParseError(
      `Can't find end tag corresponding to start tag "${stack[stack.length - 1].tag}"`,
    );
  }
  if (badSurrogate) {
    throw new ParseError(
      "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units",
    );
  }
  const pres = entities.filter((e) => e.type === "pre");
  const out = entities
    // <pre><code>x</code></pre> without a language is one pre entity.
    .filter((e) =>
      !(e.type === "code" && pres.some((p) => p.offset === e.offset && p.length === e.length))
    )
    .map(({ argument: _argument, ...e }) => e);
  return { text: result, entities: out };
}

/** Sorting priority of entity types at the same offset and length (TDLib's order). */
const TYPE_PRIORITY: Record<string, number> = {
  blockquote: 0,
  pre: 11,
  code: 20,
  text_link: 49,
  bold: 90,
  italic: 91,
  underline: 92,
  strikethrough: 93,
  spoiler: 94,
};

function sortEntities(entities: Entity[]): Entity[] {
  return entities.sort((a, b) =>
    a.offset - b.offset || b.length - a.length ||
    (TYPE_PRIORITY[a.type] ?? 50) - (TYPE_PRIORITY[b.type] ?? 50)
  );
}

/**
 * TDLib's clean-up before sending: '\r' is removed and other control characters become
 * spaces, surrounding whitespace is trimmed, entities are clipped and sorted.
 */
function fixFormattedText(text: string, entities: Entity[]): FormattedText {
  // Control characters: '\r' is dropped, the others become spaces.
  const map = new Array<number>(text.length + 1);
  let cleaned = "";
  for (let i = 0; i < text.length; i++) {
    map[i] = cleaned.length;
    const c = text.charCodeAt(i);
    if (c === 13) continue;
    cleaned += c < 32 && c !== 9 && c !== 10 ? " " : text[i];
  }
  map[text.length] = cleaned.length;
  let lead = 0;
  while (lead < cleaned.length && isSpace(cleaned[lead])) lead++;
  let end = cleaned.length;
  while (end > lead && isSpace(cleaned[end - 1])) end--;
  const result = cleaned.slice(lead, end);
  const out: Entity[] = [];
  for (const e of entities) {
    const start = Math.max(map[e.offset] - lead, 0);
    const stop = Math.min(map[e.offset + e.length] - lead, result.length);
    if (stop > start) out.push({ ...e, offset: start, length: stop - start });
  }
  return { text: result, entities: sortEntities(out).map(orderKeys) };
}

/** Puts offset, length and type first, the way the Bot API serializes entities. */
function orderKeys(e: Entity): Entity {
  const { offset, length, type, ...rest } = e;
  return { offset, length, type, ...rest };
}

/**
 * Validates an http(s) link the way TDLib's LinkManager::check_link does and returns it
 * normalized (scheme added, host lower-cased, "/" for an empty path), or the reason it
 * was refused ("Wrong HTTP URL", "Unsupported URL protocol", "URL host is empty", ...).
 * tg:// and ton:// links are not modelled: they are an unsupported protocol here.
 */
export function checkLink(input: string): { url: string } | { error: string } {
  const link = input.trim();
  if (link === "") return { error: "URL host is empty" };
  let scheme = "http";
  let rest = link;
  const withScheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(link);
  if (withScheme) {
    scheme = withScheme[1].toLowerCase();
    if (scheme !== "http" && scheme !== "https") return { error: "Unsupported URL protocol" };
    rest = link.slice(withScheme[0].length);
  } else if (/^[a-zA-Z][a-zA-Z0-9+.-]*:[^0-9]/.test(link)) {
    return { error: "Unsupported URL protocol" };
  }
  const hostEnd = rest.search(/[/?#]/);
  let authority = hostEnd < 0 ? rest : rest.slice(0, hostEnd);
  let path = hostEnd < 0 ? "" : rest.slice(hostEnd);
  let userinfo = "";
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    userinfo = authority.slice(0, at + 1);
    authority = authority.slice(at + 1);
  }
  let host = authority;
  let port = "";
  const portMatch = /^(.*):(\d*)$/.exec(authority);
  if (portMatch && !authority.endsWith("]")) {
    host = portMatch[1];
    port = portMatch[2];
    const p = Number(port);
    if (port === "" || p <= 0 || p > 65535) {
      return { error: "Wrong port number specified in the URL" };
    }
  }
  if (host === "") return { error: "URL host is empty" };
  const ipv4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
  const ipv6 = /^\[[0-9a-fA-F:.]+\]$/.test(host);
  if (!ipv4 && !ipv6) {
    if (!/^[\p{L}\p{N}_.-]+$/u.test(host) || host.startsWith(".") || host.includes("..")) {
      return { error: "Wrong HTTP URL" };
    }
    const labels = host.replace(/\.$/, "").split(".");
    const tld = labels[labels.length - 1];
    if (labels.length < 2 || !/^[\p{L}][\p{L}\p{N}-]*$/u.test(tld)) {
      return { error: "Wrong HTTP URL" };
    }
  }
  if (path === "" || path[0] !== "/") path = `/${path}`;
  return { url: `${scheme}://${userinfo}${host.toLowerCase()}${port ? `:${port}` : ""}${path}` };
}
