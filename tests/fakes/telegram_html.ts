/**
 * Telegram's text formatting, as the Bot API applies it to message text and captions:
 * the HTML, MarkdownV2 and legacy Markdown parse modes, explicit `entities`, and the
 * clean-up TDLib does before a message is sent (control characters, trimming, automatic
 * url/mention/command/hashtag entities). Ported from the behaviour of TDLib's
 * MessageEntity.cpp and telegram-bot-api's Client.cpp, including their error texts, so a
 * fake server rejects exactly what Telegram rejects.
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
  custom_emoji_id?: string;
  user?: Record<string, unknown>;
  unix_time?: number;
  date_time_format?: string;
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

export interface FormatOptions {
  /**
   * Resolves tg://user?id= links and text_mention entities; undefined means "user not
   * found", and so does a missing resolver.
   */
  resolveUser?: (id: number) => Record<string, unknown> | undefined;
}

/**
 * Parses `text` the way sendMessage does with these `parse_mode` and `entities`
 * parameters, then cleans it as TDLib does. Throws FormatError with Telegram's wording.
 * An empty result is returned as is: the caller decides whether empty is allowed.
 */
export function formatText(
  text: string,
  parseMode: string | undefined,
  inputEntities: unknown,
  options: FormatOptions = {},
): FormattedText {
  if (new TextEncoder().encode(text).length > 1 << 15) throw new FormatError("text is too long");
  const mode = (parseMode ?? "").toLowerCase();
  let parsed: FormattedText;
  let explicit = false;
  if (text !== "" && mode !== "" && mode !== "none") {
    const parser = mode === "html"
      ? parseHtml
      : mode === "markdownv2"
      ? parseMarkdownV2
      : mode === "markdown"
      ? parseMarkdown
      : undefined;
    if (!parser) throw new FormatError("unsupported parse_mode");
    try {
      parsed = parser(text);
    } catch (e) {
      if (e instanceof ParseError) throw new FormatError(`can't parse entities: ${e.message}`);
      throw e;
    }
  } else {
    parsed = { text, entities: entitiesFromInput(inputEntities) };
    explicit = true;
  }
  return fixFormattedText(parsed.text, parsed.entities, { ...options, explicit });
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
  span: "spoiler",
};
const HTML_TAGS = new Set([
  ...Object.keys(SIMPLE_HTML_TAGS),
  "a",
  "tg-emoji",
  "tg-time",
  "pre",
  "code",
  "blockquote",
]);

const INT64_MAX = 9223372036854775807n;

/** True for a decimal integer that fits in a signed 64-bit integer. */
function isInt64(s: string): boolean {
  if (!/^-?\d{1,20}$/.test(s)) return false;
  const n = BigInt(s);
  return n <= INT64_MAX && n >= -INT64_MAX - 1n;
}

/**
 * What a link in parsed text becomes: a text_mention for tg://user?id=N, a text_link for
 * a valid URL, nothing for an invalid one (its text stays plain).
 */
function linkTarget(url: string): Pick<Entity, "type" | "url" | "user"> | undefined {
  const mention = /^tg:(?:\/\/)?user\?id=(\d{1,15})$/i.exec(url.trim());
  if (mention) return { type: "text_mention", user: { id: Number(mention[1]) } };
  const checked = checkLink(url);
  return "url" in checked ? { type: "text_link", url: checked.url } : undefined;
}

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
    attrs: Record<string, string>;
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
      const attrs: Record<string, string> = {};
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
          if (tag === "blockquote" && name === "expandable") {
            argument = "1";
            continue;
          }
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
        attrs[name] = value;
        if (tag === "a" && name === "href") argument = value;
        else if (tag === "code" && name === "class" && value.startsWith("language-")) {
          argument = value.slice(9);
        } else if (tag === "span" && name === "class" && value.startsWith("tg-")) {
          argument = value.slice(3);
        } else if (tag === "tg-emoji" && name === "emoji-id") argument = value;
        else if (tag === "blockquote" && name === "expandable") argument = "1";
      }
      if (tag === "span" && argument !== "spoiler") {
        throw new ParseError(
          `Tag "span" must have class "tg-spoiler" at byte offset ${beginByte}`,
        );
      }
      stack.push({ tag, argument, attrs, offset: result.length });
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
        case "tg-emoji":
          if (!isInt64(open.argument) || BigInt(open.argument) === 0n) {
            throw new ParseError("Invalid custom emoji identifier specified");
          }
          entities.push({ offset, length, type: "custom_emoji", custom_emoji_id: open.argument });
          break;
        case "tg-time": {
          const unix = open.attrs["unix"] ?? "";
          if (!/^\d{1,10}$/.test(unix)) throw new ParseError("Invalid Unix time specified");
          const format = open.attrs["format"] ?? "";
          if (!/^(r|w?[dD]?[tT]?)$/.test(format)) {
            throw new ParseError("Invalid date and time format specified");
          }
          entities.push({
            offset,
            length,
            type: "date_time",
            unix_time: Number(unix),
            ...(format ? { date_time_format: format } : {}),
          });
          break;
        }
        case "a": {
          const target = linkTarget(open.argument === "" ? result.slice(offset) : open.argument);
          if (target) entities.push({ offset, length, ...target });
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
        case "blockquote":
          entities.push({
            offset,
            length,
            type: open.argument ? "expandable_blockquote" : "blockquote",
          });
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

/**
 * The URL of a MarkdownV2 link from `start` up to the next ')', with '\\' escapes
 * removed; `end` is the index of that ')', or the text's length when there is none.
 */
function readLinkUrl(text: string, start: number): { url: string; end: number } {
  let url = "";
  let i = start;
  while (i < text.length && text[i] !== ")") {
    const next = text.charCodeAt(i + 1);
    if (text[i] === "\\" && next > 0 && next <= 126) {
      url += text[i + 1];
      i += 2;
      continue;
    }
    url += text[i++];
  }
  return { url, end: i };
}

/** TDLib's names of entity types, used in MarkdownV2 error messages. */
const TD_TYPE_NAMES: Record<string, string> = {
  bold: "Bold",
  italic: "Italic",
  underline: "Underline",
  strikethrough: "Strikethrough",
  spoiler: "Spoiler",
  code: "Code",
  pre: "Pre",
  pre_code: "PreCode",
  text_link: "TextUrl",
  custom_emoji: "CustomEmoji",
};

/** Parses Telegram's MarkdownV2. Throws ParseError with TDLib's messages. */
export function parseMarkdownV2(text: string): FormattedText {
  const bytes = byteOffsets(text);
  const n = text.length;
  const at = (k: number) => (k < n ? text[k] : "\0");
  let result = "";
  const entities: Entity[] = [];
  interface Open {
    type: string;
    argument: string;
    offset: number;
    byte: number;
    begin: number;
  }
  const stack: Open[] = [];
  let quote: { offset: number; expandable: boolean } | undefined;
  const closeQuote = () => {
    if (quote && result.length > quote.offset) {
      entities.push({
        offset: quote.offset,
        length: result.length - quote.offset,
        type: quote.expandable ? "expandable_blockquote" : "blockquote",
      });
    }
    quote = undefined;
  };
  const reservedError = (c: string) =>
    new ParseError(`Character '${c}' is reserved and must be escaped with the preceding '\\'`);

  for (let i = 0; i < n; i++) {
    const c = text[i];
    const code = text.charCodeAt(i + 1);
    if (c === "\\" && i + 1 < n && code > 0 && code <= 126) {
      i++;
      result += text[i];
      continue;
    }
    const top = stack[stack.length - 1];
    const inCode = top !== undefined &&
      (top.type === "code" || top.type === "pre" || top.type === "pre_code");
    if (!inCode) {
      // Block quotes: '>' at the start of a line, '||' at the end of the last line
      // makes the quote expandable.
      if (c === ">" && (result.length === 0 || result.endsWith("\n"))) {
        quote ??= { offset: result.length, expandable: false };
        continue;
      }
      if (c === "\n" && quote) {
        const rest = text.slice(i + 1);
        if (!rest.startsWith(">") && !rest.startsWith("**>")) closeQuote();
        result += c;
        continue;
      }
      if (
        quote && c === "|" && at(i + 1) === "|" && (at(i + 2) === "\n" || i + 2 >= n) &&
        top?.type !== "spoiler"
      ) {
        quote.expandable = true;
        i++;
        continue;
      }
    }
    const reserved = inCode ? "`" : "_*[]()~`>#+-=|{}.!";
    if (!reserved.includes(c)) {
      result += c;
      continue;
    }
    let isEnd = false;
    if (top) {
      switch (top.type) {
        case "bold":
          isEnd = c === "*";
          break;
        case "italic":
          isEnd = c === "_" && at(i + 1) !== "_";
          break;
        case "code":
          isEnd = c === "`";
          break;
        case "pre":
        case "pre_code":
          isEnd = c === "`" && at(i + 1) === "`" && at(i + 2) === "`";
          break;
        case "text_link":
        case "custom_emoji":
          isEnd = c === "]";
          break;
        case "underline":
          isEnd = c === "_" && at(i + 1) === "_";
          break;
        case "strikethrough":
          isEnd = c === "~";
          break;
        case "spoiler":
          isEnd = c === "|" && at(i + 1) === "|";
          break;
      }
    }
    if (!isEnd) {
      let type: string;
      let argument = "";
      const byte = bytes[i];
      switch (c) {
        case "_":
          if (at(i + 1) === "_") {
            type = "underline";
            i++;
          } else type = "italic";
          break;
        case "*":
          type = "bold";
          break;
        case "~":
          type = "strikethrough";
          break;
        case "|":
          if (at(i + 1) !== "|") throw reservedError(c);
          i++;
          type = "spoiler";
          break;
        case "[":
          type = "text_link";
          break;
        case "`":
          if (at(i + 1) === "`" && at(i + 2) === "`") {
            i += 3;
            type = "pre";
            let languageEnd = i;
            while (!isSpace(at(languageEnd)) && at(languageEnd) !== "`") languageEnd++;
            if (i !== languageEnd && languageEnd < n && at(languageEnd) !== "`") {
              type = "pre_code";
              argument = text.slice(i, languageEnd);
              i = languageEnd;
            }
            // Skip one new line at the beginning of the block.
            if (at(i) === "\n" || at(i) === "\r") {
              if ((at(i + 1) === "\n" || at(i + 1) === "\r") && at(i) !== at(i + 1)) i += 2;
              else i++;
            }
            i--;
          } else type = "code";
          break;
        case "!":
          if (at(i + 1) === "[") {
            i++;
            type = "custom_emoji";
            break;
          }
          throw reservedError(c);
        default:
          throw reservedError(c);
      }
      stack.push({ type, argument, offset: result.length, byte, begin: result.length });
      continue;
    }
    const open = stack[stack.length - 1];
    let skip = result.length === open.offset;
    let extra: Partial<Entity> = {};
    let type = open.type;
    switch (open.type) {
      case "underline":
      case "spoiler":
        i++;
        break;
      case "pre":
      case "pre_code":
        i += 2;
        break;
      case "text_link": {
        let url = "";
        if (at(i + 1) !== "(") url = result.slice(open.begin);
        else {
          const urlBegin = i + 2;
          ({ url, end: i } = readLinkUrl(text, urlBegin));
          if (at(i) !== ")") {
            throw new ParseError(`Can't find end of a URL at byte offset ${bytes[urlBegin]}`);
          }
        }
        const target = linkTarget(url);
        if (target) ({ type, ...extra } = target);
        else skip = true;
        break;
      }
      case "custom_emoji": {
        if (at(i + 1) !== "(") {
          throw new ParseError("Custom emoji entity must contain a tg://emoji URL");
        }
        let url: string;
        ({ url, end: i } = readLinkUrl(text, i + 2));
        if (at(i) !== ")") {
          throw new ParseError("Custom emoji entity must contain a tg://emoji URL");
        }
        const emoji = /^tg:\/\/emoji\?id=(-?\d+)$/.exec(url);
        const time = /^tg:\/\/time\?unix=(\d+)(?:&format=([a-zA-Z]*))?$/.exec(url);
        if (emoji) {
          if (!isInt64(emoji[1]) || BigInt(emoji[1]) === 0n) {
            throw new ParseError("Invalid custom emoji identifier specified");
          }
          extra = { custom_emoji_id: emoji[1] };
        } else if (time) {
          type = "date_time";
          extra = { unix_time: Number(time[1]), ...(time[2] ? { date_time_format: time[2] } : {}) };
        } else throw new ParseError("Custom emoji entity must contain a tg://emoji URL");
        break;
      }
    }
    if (!skip) {
      const entity: Entity = {
        offset: open.offset,
        length: result.length - open.offset,
        type: type === "pre_code" ? "pre" : type,
        ...extra,
      };
      if (type === "pre_code") entity.language = open.argument;
      entities.push(entity);
    }
    stack.pop();
  }
  closeQuote();
  if (stack.length > 0) {
    const top = stack[stack.length - 1];
    throw new ParseError(
      `Can't find end of ${TD_TYPE_NAMES[top.type]} entity at byte offset ${top.byte}`,
    );
  }
  return { text: result, entities };
}

/** Parses the legacy Markdown parse mode. Throws ParseError with TDLib's messages. */
export function parseMarkdown(text: string): FormattedText {
  const bytes = byteOffsets(text);
  const n = text.length;
  const at = (k: number) => (k < n ? text[k] : "\0");
  let result = "";
  const entities: Entity[] = [];
  for (let i = 0; i < n; i++) {
    const c = text[i];
    if (c === "\\" && "_*`[".includes(at(i + 1)) && i + 1 < n) {
      i++;
      result += text[i];
      continue;
    }
    if (!"_*`[".includes(c)) {
      result += c;
      continue;
    }
    const begin = i;
    const endChar = c === "[" ? "]" : c;
    let isPre = false;
    let language = "";
    i++;
    if (c === "`" && at(i) === "`" && at(i + 1) === "`") {
      i += 2;
      isPre = true;
      let languageEnd = i;
      while (!isSpace(at(languageEnd)) && at(languageEnd) !== "`") languageEnd++;
      if (i !== languageEnd && languageEnd < n && at(languageEnd) !== "`") {
        language = text.slice(i, languageEnd);
        i = languageEnd;
      }
      if (at(i) === "\n" || at(i) === "\r") {
        if ((at(i + 1) === "\n" || at(i + 1) === "\r") && at(i) !== at(i + 1)) i += 2;
        else i++;
      }
    }
    const offset = result.length;
    while (i < n && (text[i] !== endChar || (isPre && !(at(i + 1) === "`" && at(i + 2) === "`")))) {
      result += text[i++];
    }
    if (i >= n) {
      throw new ParseError(`Can't find end of the entity starting at byte offset ${bytes[begin]}`);
    }
    const length = result.length - offset;
    if (length > 0) {
      if (c === "_") entities.push({ offset, length, type: "italic" });
      else if (c === "*") entities.push({ offset, length, type: "bold" });
      else if (c === "`") {
        if (isPre) {
          entities.push({ offset, length, type: "pre", ...(language ? { language } : {}) });
        } else entities.push({ offset, length, type: "code" });
      } else {
        let url = "";
        if (at(i + 1) !== "(") url = text.slice(begin + 1, i);
        else {
          i += 2;
          while (i < n && text[i] !== ")") url += text[i++];
        }
        const target = linkTarget(url);
        if (target) entities.push({ offset, length, ...target });
      }
    }
    if (isPre) i += 2;
  }
  return { text: result, entities };
}

const AUTO_TYPES = new Set([
  "mention",
  "hashtag",
  "cashtag",
  "bot_command",
  "url",
  "email",
  "phone_number",
  "bank_card_number",
]);

/** Field-access errors in the words of td's JSON reader. */
function requiredInt(obj: Record<string, unknown>, field: string): number {
  const v = obj[field];
  if (v === undefined || v === null) throw new FormatError(`Can't find field "${field}"`);
  const n = typeof v === "number"
    ? v
    : typeof v === "string" && /^-?\d+$/.test(v)
    ? Number(v)
    : NaN;
  if (!Number.isInteger(n)) throw new FormatError(`Field "${field}" must be a valid Number`);
  return n;
}

/**
 * Reads the `entities` parameter as the Bot API does: anything but an array is ignored,
 * automatically detected types are dropped, and a malformed entity is an error.
 */
function entitiesFromInput(input: unknown): Entity[] {
  let value = input;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return [];
    }
  }
  if (!Array.isArray(value)) return [];
  const out: Entity[] = [];
  for (const raw of value) {
    try {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        throw new FormatError("expected an Object");
      }
      const obj = raw as Record<string, unknown>;
      const offset = requiredInt(obj, "offset");
      const length = requiredInt(obj, "length");
      if (obj.type === undefined) throw new FormatError(`Can't find field "type"`);
      if (typeof obj.type !== "string") {
        throw new FormatError(`Field "type" must be of type String`);
      }
      const type = obj.type;
      if (type === "") throw new FormatError("Type is not specified");
      if (AUTO_TYPES.has(type)) continue;
      const e: Entity = { offset, length, type };
      switch (type) {
        case "bold":
        case "italic":
        case "underline":
        case "strikethrough":
        case "spoiler":
        case "code":
        case "blockquote":
        case "expandable_blockquote":
          break;
        case "pre":
          if (typeof obj.language === "string" && obj.language !== "") e.language = obj.language;
          break;
        case "text_link":
          if (obj.url === undefined || obj.url === null) {
            throw new FormatError(`Can't find field "url"`);
          }
          e.url = String(obj.url);
          break;
        case "text_mention": {
          const user = obj.user;
          if (typeof user !== "object" || user === null) {
            throw new FormatError(`Can't find field "user"`);
          }
          e.user = { id: requiredInt(user as Record<string, unknown>, "id") };
          break;
        }
        case "custom_emoji": {
          const id = obj.custom_emoji_id;
          if (id === undefined || id === null) {
            throw new FormatError(`Can't find field "custom_emoji_id"`);
          }
          if (!isInt64(String(id))) {
            throw new FormatError(`Field "custom_emoji_id" must be a valid Number`);
          }
          e.custom_emoji_id = String(id);
          break;
        }
        case "date_time":
          e.unix_time = requiredInt(obj, "unix_time");
          if (typeof obj.date_time_format === "string" && obj.date_time_format !== "") {
            e.date_time_format = obj.date_time_format;
          }
          break;
        default:
          throw new FormatError("Unsupported type specified");
      }
      out.push(e);
    } catch (err) {
      if (err instanceof FormatError) {
        throw new FormatError(`can't parse MessageEntity: ${err.message}`);
      }
      throw err;
    }
  }
  return out;
}

/** Sorting priority of entity types at the same offset and length (TDLib's order). */
const TYPE_PRIORITY: Record<string, number> = {
  blockquote: 0,
  expandable_blockquote: 0,
  pre: 11,
  code: 20,
  text_link: 49,
  text_mention: 49,
  mention: 50,
  hashtag: 50,
  cashtag: 50,
  bot_command: 50,
  url: 50,
  email: 50,
  phone_number: 50,
  bold: 90,
  italic: 91,
  underline: 92,
  strikethrough: 93,
  spoiler: 94,
  date_time: 95,
  custom_emoji: 99,
};

function sortEntities(entities: Entity[]): Entity[] {
  return entities.sort((a, b) =>
    a.offset - b.offset || b.length - a.length ||
    (TYPE_PRIORITY[a.type] ?? 50) - (TYPE_PRIORITY[b.type] ?? 50)
  );
}

/** Entities that hold data of their own and cannot overlap automatic ones. */
const ATOMIC = new Set([
  "code",
  "pre",
  "text_link",
  "text_mention",
  "custom_emoji",
  "date_time",
]);

/**
 * Finds the entities Telegram adds on its own: http(s) and www. links, @mentions,
 * /commands and #hashtags. Bare domains ("example.com") are not detected here, although
 * Telegram links those too.
 */
function detectEntities(text: string): Entity[] {
  const found: Entity[] = [];
  const wordBefore = (k: number) => k > 0 && /[\p{L}\p{N}_]/u.test(text[k - 1]);
  for (const m of text.matchAll(/(?:https?:\/\/|www\.)[^\s<>"'«»]+/giu)) {
    let url = m[0];
    // Trailing punctuation is not part of a link.
    while (/[.,;:!?)\]}'"]$/.test(url) && !(url.endsWith(")") && url.includes("("))) {
      url = url.slice(0, -1);
    }
    if (wordBefore(m.index) || !/[\p{L}\p{N}]\.[\p{L}\p{N}]/u.test(url)) continue;
    found.push({ offset: m.index, length: url.length, type: "url" });
  }
  const taken = (start: number, end: number) =>
    found.some((e) => start < e.offset + e.length && e.offset < end);
  for (const m of text.matchAll(/@[a-zA-Z0-9_]{4,32}(?![a-zA-Z0-9_])/g)) {
    if (wordBefore(m.index) || taken(m.index, m.index + m[0].length)) continue;
    found.push({ offset: m.index, length: m[0].length, type: "mention" });
  }
  for (const m of text.matchAll(/\/[a-zA-Z0-9_]{1,64}(?:@[a-zA-Z0-9_]{3,32})?(?![a-zA-Z0-9_/])/g)) {
    if (m.index > 0 && !/\s/.test(text[m.index - 1])) continue;
    if (taken(m.index, m.index + m[0].length)) continue;
    found.push({ offset: m.index, length: m[0].length, type: "bot_command" });
  }
  for (const m of text.matchAll(/#[\p{L}\p{N}_]{1,256}/gu)) {
    if (wordBefore(m.index) || !/[\p{L}_]/u.test(m[0].slice(1))) continue;
    if (taken(m.index, m.index + m[0].length)) continue;
    found.push({ offset: m.index, length: m[0].length, type: "hashtag" });
  }
  return found;
}

/**
 * TDLib's clean-up before sending: bounds of explicit entities are checked, '\r' is
 * removed and other control characters become spaces, surrounding whitespace is trimmed,
 * entities are clipped and sorted, links are normalized and automatic entities added.
 */
function fixFormattedText(
  text: string,
  entities: Entity[],
  options: FormatOptions & { explicit?: boolean } = {},
): FormattedText {
  const checked: Entity[] = [];
  for (const e of entities) {
    if (e.offset < 0) throw new FormatError(`receive an entity with incorrect offset ${e.offset}`);
    if (e.length < 0) throw new FormatError(`receive an entity with incorrect length ${e.length}`);
    if (e.offset > text.length) {
      throw new FormatError(`entity begins after the end of the text at UTF-16 offset ${e.offset}`);
    }
    if (e.offset + e.length > text.length) {
      throw new FormatError(
        `entity beginning at UTF-16 offset ${e.offset} ends after the end of the text at UTF-16 offset ${
          e.offset + e.length
        }`,
      );
    }
    const copy = { ...e };
    if (copy.type === "text_link" && options.explicit) {
      const link = checkLink(copy.url ?? "");
      if ("error" in link) {
        throw new FormatError(`entity URL '${copy.url}' is invalid: ${link.error}`);
      }
      copy.url = link.url;
    }
    if (copy.type === "text_mention") {
      const user = options.resolveUser?.(Number(copy.user?.id));
      if (!user) throw new FormatError("user not found");
      copy.user = user;
    }
    checked.push(copy);
  }
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
  let out: Entity[] = [];
  for (const e of checked) {
    const start = Math.max(map[e.offset] - lead, 0);
    const stop = Math.min(map[e.offset + e.length] - lead, result.length);
    if (stop > start) out.push({ ...e, offset: start, length: stop - start });
  }
  const atomic = out.filter((e) => ATOMIC.has(e.type));
  for (const auto of detectEntities(result)) {
    const overlaps = atomic.some((e) =>
      auto.offset < e.offset + e.length && e.offset < auto.offset + auto.length
    );
    if (!overlaps) out.push(auto);
  }
  out = sortEntities(out).map(orderKeys);
  return { text: result, entities: out };
}

/** Puts offset, length and type first, the way the Bot API serializes entities. */
function orderKeys(e: Entity): Entity {
  const { offset, length, type, ...rest } = e;
  return { offset, length, type, ...rest };
}

/**
 * Validates a link the way TDLib's LinkManager::check_link does and returns it
 * normalized (scheme added, host lower-cased, "/" for an empty path), or the reason it
 * was refused ("Wrong HTTP URL", "Unsupported URL protocol", "URL host is empty", ...).
 */
export function checkLink(input: string): { url: string } | { error: string } {
  const link = input.trim();
  if (link === "") return { error: "URL host is empty" };
  const tg = /^(tg|ton|tonsite):(?:\/\/)?(.*)$/is.exec(link);
  if (tg) {
    if (tg[2] === "") return { error: `Wrong ${tg[1].toLowerCase()} URL` };
    return { url: `${tg[1].toLowerCase()}://${tg[2]}` };
  }
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
