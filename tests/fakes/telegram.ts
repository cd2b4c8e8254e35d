/**
 * A fake Telegram Bot API server for end-to-end tests: the real bot talks to it over
 * HTTP on 127.0.0.1 (`new Bot(token, { client: { apiRoot } })`). It validates like
 * telegram-bot-api does and answers with its exact error texts, so a bug that Telegram
 * would reject fails the test too. Behaviour follows Bot API 10.3 and the sources of
 * tdlib/telegram-bot-api (Client.cpp) and TDLib where the documentation is silent.
 *
 * Scope: exactly the methods the bot calls: getMe, getUpdates, setWebhook,
 * deleteWebhook, setMyCommands, sendMessage, editMessageText, deleteMessage,
 * sendChatAction, sendDocument (an uploaded file), answerCallbackQuery, getChatMember,
 * getChat, sendMessageDraft, the rich messages of Bot API 10.1 (sendRichMessage,
 * sendRichMessageDraft with `markdown`, parsed in `telegram_rich.ts`), and getFile with
 * the download route `GET /file/bot<token>/<file_path>` (`telegram_files.ts`). Text is
 * plain or HTML (`telegram_html.ts`); keyboards are inline, with url and callback_data
 * buttons. Parameters arrive as JSON, or as multipart/form-data for uploads, as grammY
 * sends them. Any other method is 404 "Not Found", and `missingMethods` makes any of
 * these 404 too, like an older local Bot API server. What the bot never sends (other
 * parse modes, explicit entities, reply keyboards, other button types, command scopes,
 * files by id or URL, inline messages) is refused with a 400 that says the fake does not
 * model it; a method call in a webhook's answer is ignored (grammY makes none).
 *
 * The user's side, for tests: sendText (private chat or group), sendSticker,
 * sendMessageFields (voice notes, audio, video notes, photos, albums and documents with
 * real bytes, through the helpers in `telegram_files.ts`), pressButton, pressStop,
 * blockBot, pushUpdate (any update, e.g. chat_member), and the channel and its members
 * (addChannel, setMember). Users, chats and channels exist only when a test declares them
 * that way. Records: calls, callsTo, waitForCall(s), chatMessages, chatDrafts,
 * shownDraft, pendingUpdateCount, files.downloads; faults: failNext, missingMethods.
 *
 * Drafts: the last draft of a private chat is shown until the bot sends a message there
 * or `draftTtlMs` (30 s, Telegram's preview time) passes without an update. With
 * `can_stop` it has a stop button: `pressStop` presses it, which queues the Bot API 10.3
 * `stopped_message_generation` update and, without `keep_on_stop`, hides the draft.
 */
import {
  checkLink,
  type Entity,
  FormatError,
  type FormattedText,
  formatText,
} from "./telegram_html.ts";
import { parseRichMessage, type RichContent } from "./telegram_rich.ts";
import { FakeFiles } from "./telegram_files.ts";

/** One request the fake answered, in the order the outcomes were decided. */
export interface RecordedCall {
  method: string;
  params: Record<string, unknown>;
  /** Arrival time, ms since the epoch. */
  at: number;
  ok: boolean;
  result?: unknown;
  error?: { error_code: number; description: string };
}

export interface FakeTelegramOptions {
  /** Delay before every answer (for benchmarks). */
  latencyMs?: number;
  /** Methods answered with 404 Not Found, like an older local Bot API server. */
  missingMethods?: string[];
  /** How long a draft stays shown without an update; default 30000 (Telegram's ~30 s). */
  draftTtlMs?: number;
}

export interface FakeUser {
  id: number;
  first_name?: string;
  language_code?: string;
  username?: string;
}

/** A file the bot sent, with its bytes. */
export interface FakeDocument {
  file_name: string;
  content: Uint8Array;
  mime_type?: string;
}

/** A message the bot has in a chat, after edits and deletes. */
export interface FakeMessage {
  message_id: number;
  date: number;
  edit_date?: number;
  text?: string;
  entities?: Entity[];
  caption?: string;
  caption_entities?: Entity[];
  reply_markup?: Record<string, unknown>;
  reply_to_message_id?: number;
  document?: FakeDocument;
  /** A rich message (sendRichMessage): its blocks, the text a user sees, and the source sent. */
  rich?: FakeRich;
}

/** A rich message or draft as the fake parsed it. */
export interface FakeRich {
  /** `rich_message.blocks` as the Bot API returns them. */
  blocks: Record<string, unknown>[];
  /** The text a user sees (blocks' text, table cells joined with " | "). */
  text: string;
  /** The `markdown` the bot sent. */
  markdown: string;
}

/** One sendMessageDraft or sendRichMessageDraft the bot made. */
export interface FakeDraft {
  draft_id: number;
  /** The text shown (for a rich draft: the text of its blocks). */
  text: string;
  entities?: Entity[];
  at: number;
  method: "sendMessageDraft" | "sendRichMessageDraft";
  rich?: FakeRich;
  can_stop?: boolean;
  keep_on_stop?: boolean;
}

/** An error as the Bot API reports it. */
export interface FakeApiError {
  error_code: number;
  description: string;
  parameters?: Record<string, unknown>;
}

type Params = Record<string, unknown>;
type Timer = ReturnType<typeof setTimeout>;
type Json = Record<string, unknown>;

interface UploadedFile {
  name: string;
  content: Uint8Array;
  type?: string;
}

interface Ctx {
  files: Map<string, UploadedFile>;
}

type Handler = (p: Params, ctx: Ctx) => unknown;

interface ChatInfo {
  id: number;
  type: "private" | "group" | "supergroup" | "channel";
  title?: string;
  username?: string;
  botIsAdmin?: boolean;
}

interface StoredMessage {
  message: Json;
  fromBot: boolean;
  document?: FakeDocument;
  rich?: FakeRich;
}

/** Where a new bot message goes, after the checks every send method makes. */
interface SendTarget {
  chat: ChatInfo;
  replyTo?: Json;
  markup?: Json;
}

/** The draft a private chat shows now (`draft.at` is its last update). */
interface ShownDraft {
  draft: FakeDraft;
  /** The stop button was pressed (keep_on_stop kept the draft, without the button). */
  stopped: boolean;
}

interface Member {
  status: string;
  isMember: boolean;
}

interface Waiter {
  check(): boolean;
  fail(error: Error): void;
  timer: Timer;
}

interface HeldPoll {
  wake(reason: "update" | "timeout" | "other" | "webhook" | "closed"): void;
}

interface Webhook {
  url: string;
  secret: string;
  maxConnections: number;
  abort: AbortController;
}

/** An answer the Bot API gives instead of a result. */
class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly description: string,
    readonly parameters?: Record<string, unknown>,
  ) {
    super(description);
  }
}

/** A result that comes with a `description`, like setWebhook's "Webhook was set". */
class Described {
  constructor(readonly result: unknown, readonly description: string) {}
}

const bad = (message: string) => new ApiError(400, `Bad Request: ${message}`);
const forbidden = (message: string) => new ApiError(403, `Forbidden: ${message}`);
const conflict = (message: string) => new ApiError(409, message);

/** The bot's token, `<digits>:<35ish chars>`; the digits are the bot's id. */
const TOKEN = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz";
/** Wait before a failed webhook delivery is retried (Telegram waits longer). */
const WEBHOOK_RETRY_MS = 100;
const TOKEN_RE = /^\d+:[A-Za-z0-9_-]+$/;
const NOT_MODIFIED = "message is not modified: specified new message content and reply markup " +
  "are exactly the same as a current content and reply markup of the message";
const GETUPDATES_CONFLICT =
  "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";
const WEBHOOK_ACTIVE =
  "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first";

/** Types Telegram sends only when named in allowed_updates. */
const OPT_IN_UPDATES = new Set(["chat_member", "message_reaction", "message_reaction_count"]);

/** The actions sendChatAction knows, as telegram-bot-api lists them. */
const CHAT_ACTIONS = new Set(
  ("cancel typing record_video upload_video record_audio record_voice upload_audio " +
    "upload_voice upload_photo upload_document choose_sticker pick_up_location find_location " +
    "record_video_note upload_video_note").split(" "),
);

const MEMBER_STATUSES = new Set("creator administrator member restricted left kicked".split(" "));

/** A restricted member's rights in ChatMemberRestricted: none but reactions. */
const RESTRICTED_RIGHTS = {
  ...Object.fromEntries(
    ("can_send_messages can_send_audios can_send_documents can_send_photos can_send_videos " +
      "can_send_video_notes can_send_voice_notes can_send_polls can_send_other_messages " +
      "can_add_web_page_previews can_change_info can_invite_users can_edit_tag " +
      "can_pin_messages can_manage_topics").split(" ").map((right) => [right, false]),
  ),
  can_react_to_messages: true,
};

/** Types Telegram gives the bot's documents by their extension. */
const MIME_TYPES: Record<string, string> = { txt: "text/plain", md: "text/markdown" };

const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const unixNow = () => Math.floor(Date.now() / 1000);

/** A parameter as the Bot API sees it: everything is text, objects are JSON. */
function argString(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  return JSON.stringify(v);
}

/** td::to_integer: the leading integer of the text, 0 when there is none. */
function argInt(v: unknown, fallback = 0, min = -Infinity, max = Infinity): number {
  const s = argString(v);
  if (s === "") return fallback;
  const m = /^\s*([+-]?\d+)/.exec(s);
  const n = m ? Number(m[1]) : 0;
  return Math.min(Math.max(n, min), max);
}

/** The Bot API's to_bool: "true" in any case, or "1". */
function argBool(v: unknown): boolean {
  const s = argString(v).toLowerCase();
  return s === "true" || s === "1";
}

/** A JSON parameter: objects pass, text is decoded; `undefined` when absent. */
function argJson(v: unknown, error: string): unknown {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v);
  } catch {
    throw bad(error);
  }
}

/**
 * A multipart field typed back the way grammY wrote it (numbers and booleans as text,
 * objects as JSON), so recorded params look like those of a JSON call.
 */
function typed(value: string): unknown {
  try {
    const parsed = JSON.parse(value);
    return JSON.stringify(parsed) === value ? parsed : value;
  } catch {
    return value;
  }
}

/** link_preview_options as telegram-bot-api reads it for text messages. */
function checkLinkPreview(p: Params): void {
  const options = argJson(p.link_preview_options, "can't parse link preview options JSON object");
  if (options === undefined) return;
  if (!isObject(options)) throw bad("object expected as link preview options");
  for (const f of ["is_disabled", "prefer_small_media", "prefer_large_media", "show_above_text"]) {
    if (options[f] !== undefined && typeof options[f] !== "boolean") {
      throw bad(`field "${f}" must be of type Boolean`);
    }
  }
  if (typeof options.url === "string" && options.url !== "" && "error" in checkLink(options.url)) {
    throw bad("WEBPAGE_URL_INVALID");
  }
}

/** draft_id of both draft methods: a non-zero integer. */
function draftIdArg(p: Params): number {
  const draft = argString(p.draft_id).trim();
  if (!/^-?\d+$/.test(draft) || Number(draft) === 0) throw bad("draft_id must be non-zero");
  return Number(draft);
}

/** The Bot API's body for an error. */
function errorBody(e: ApiError): Json {
  return {
    ok: false,
    error_code: e.code,
    description: e.description,
    ...(e.parameters ? { parameters: e.parameters } : {}),
  };
}

/** Fake Telegram Bot API server; see the module comment. */
export class FakeTelegram {
  readonly apiRoot: string;
  readonly token: string = TOKEN;
  /** The digits of the token. */
  readonly botId = Number(TOKEN.split(":")[0]);
  readonly botUsername: string = "fake_test_bot";
  /** Every call, in the order its outcome was decided (a held getUpdates when it answers). */
  readonly calls: RecordedCall[] = [];
  /** Delay before every answer; may be changed while running. */
  latencyMs: number;
  /** Files users sent, getFile and downloads (`telegram_files.ts`). */
  readonly files: FakeFiles = new FakeFiles();

  #server: Deno.HttpServer;
  #closed = false;
  #draftTtlMs: number;
  #methods = new Map<string, { name: string; handler: Handler }>();
  #failures = new Map<string, { error: FakeApiError; times: number }>();
  #waiters = new Set<Waiter>();
  #sleeps = new Set<{ timer: Timer; resolve: () => void }>();

  #users = new Map<number, FakeUser>();
  #chats = new Map<number, ChatInfo>();
  #members = new Map<number, Map<number, Member>>();
  /** Users who blocked the bot. */
  #blocked = new Set<number>();
  #messages = new Map<number, StoredMessage[]>();
  #nextMessageId = new Map<number, number>();
  #drafts = new Map<number, FakeDraft[]>();
  #shownDrafts = new Map<number, ShownDraft>();
  #fileCounter = 0;
  /** Callback queries not answered yet. */
  #openQueries = new Set<string>();
  #queryCounter = 0;

  #pending: Json[] = [];
  #lastUpdateId = 100000;
  #allowedUpdates: Set<string> | undefined;
  #poll: HeldPoll | undefined;
  #webhook: Webhook | undefined;
  #lastSetWebhook = 0;
  #inFlight = new Set<number>();
  #notBefore = new Map<number, number>();
  #retryTimer: Timer | undefined;
  #deliveries = new Set<Promise<void>>();

  private constructor(opts: FakeTelegramOptions) {
    this.latencyMs = opts.latencyMs ?? 0;
    this.#draftTtlMs = opts.draftTtlMs ?? 30_000;
    const missing = new Set((opts.missingMethods ?? []).map((m) => m.toLowerCase()));
    const handlers: Record<string, Handler> = {
      getMe: () => this.#getMe(),
      getUpdates: (p) => this.#getUpdates(p),
      setWebhook: (p) => this.#setWebhook(p),
      deleteWebhook: (p) => this.#deleteWebhook(p),
      setMyCommands: (p) => this.#setMyCommands(p),
      sendMessage: (p) => this.#sendMessage(p),
      editMessageText: (p) => this.#editMessageText(p),
      deleteMessage: (p) => this.#deleteMessage(p),
      sendChatAction: (p) => this.#sendChatAction(p),
      sendDocument: (p, ctx) => this.#sendDocument(p, ctx),
      answerCallbackQuery: (p) => this.#answerCallbackQuery(p),
      getChatMember: (p) => this.#getChatMember(p),
      getChat: (p) => this.#getChat(p),
      sendMessageDraft: (p) => this.#sendMessageDraft(p),
      sendRichMessage: (p) => this.#sendRichMessage(p),
      sendRichMessageDraft: (p) => this.#sendRichMessageDraft(p),
      getFile: (p) => {
        const { result, error } = this.files.getFile(p);
        if (error) throw new ApiError(error.error_code, error.description);
        return result;
      },
    };
    for (const [name, handler] of Object.entries(handlers)) {
      // A missing method is simply not there: 404 like any unknown one.
      if (!missing.has(name.toLowerCase())) {
        this.#methods.set(name.toLowerCase(), { name, handler });
      }
    }
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => this.#handle(req),
    );
    this.apiRoot = `http://127.0.0.1:${(this.#server.addr as Deno.NetAddr).port}`;
  }

  /** Starts a server on 127.0.0.1 on a free port. */
  static start(opts: FakeTelegramOptions = {}): Promise<FakeTelegram> {
    return Promise.resolve(new FakeTelegram(opts));
  }

  /** Updates not yet confirmed by getUpdates nor acknowledged by the webhook. */
  get pendingUpdateCount(): number {
    return this.#pending.length;
  }

  /** Recorded calls of one method (case-insensitive, like the Bot API). */
  callsTo(method: string): RecordedCall[] {
    const m = method.toLowerCase();
    return this.calls.filter((c) => c.method.toLowerCase() === m);
  }

  /**
   * Queues an update for getUpdates or the webhook and returns its update_id (assigned
   * when missing). Like Telegram, an update of a type the bot did not ask for in
   * allowed_updates is never generated: the id is returned but nothing is queued. The
   * update's users and chats are not learnt: use sendText for a new user's message.
   */
  pushUpdate(update: Record<string, unknown>): number {
    const { update_id, ...rest } = update;
    const id = typeof update_id === "number" ? update_id : this.#lastUpdateId + 1;
    this.#lastUpdateId = Math.max(this.#lastUpdateId, id);
    const type = Object.keys(rest)[0];
    if (type !== undefined && !this.#isAllowed(type)) return id;
    this.#pending.push({ update_id: id, ...structuredClone(rest) });
    this.#poll?.wake("update");
    this.#pumpWebhook();
    return id;
  }

  /**
   * A text message from `user`, in their private chat (which then counts as started) or
   * in the given group. Text starting with /command (or /command@bot) gets its
   * bot_command entity. Throws for a text over 4096 characters, which no client sends.
   */
  sendText(
    user: FakeUser,
    text: string,
    chat?: { id: number; type: "group" | "supergroup"; title?: string },
  ): { update_id: number; message: Record<string, unknown> } {
    // Telegram's clients send at most 4096 characters (UTF-16 units, as the Bot API
    // counts) in one message; a longer text is split before it is sent.
    if (text.length > 4096) {
      throw new Error(`sendText: a user text is at most 4096 characters, got ${text.length}`);
    }
    const target = chat ? this.#ensureGroup(chat, user) : this.#startPrivate(user);
    const fields: Json = { text };
    const command = /^\/[a-zA-Z0-9_]{1,64}(?:@[a-zA-Z0-9_]{3,32})?(?![a-zA-Z0-9_])/.exec(text);
    if (command) fields.entities = [{ offset: 0, length: command[0].length, type: "bot_command" }];
    const message = this.#newMessage(target, user, fields);
    this.#store(target.id, { message, fromBot: false });
    return { update_id: this.pushUpdate({ message }), message: structuredClone(message) };
  }

  /**
   * A message with these fields (`voice`, `photo`, `document`, … with files from
   * `files.add`; see `telegram_files.ts`) from `user` in their private chat.
   */
  sendMessageFields(user: FakeUser, fields: Json): { update_id: number; message: Json } {
    const chat = this.#startPrivate(user);
    const message = this.#newMessage(chat, user, fields);
    this.#store(chat.id, { message, fromBot: false });
    return { update_id: this.pushUpdate({ message }), message: structuredClone(message) };
  }

  /** A sticker from `user` in their private chat (a message that is not text). */
  sendSticker(user: FakeUser): number {
    const chat = this.#startPrivate(user);
    const n = ++this.#fileCounter;
    const message = this.#newMessage(chat, user, {
      sticker: {
        file_id: `CAACAgI${n}_user_file`,
        file_unique_id: `U${n}`,
        type: "regular",
        width: 512,
        height: 512,
        is_animated: false,
        is_video: false,
        emoji: "👍",
        file_size: 20480,
      },
    });
    this.#store(chat.id, { message, fromBot: false });
    return this.pushUpdate({ message });
  }

  /**
   * `user` presses the inline button with this callback_data on a message the bot sent;
   * throws if the bot has no such message or button (Telegram would show none). The
   * query id can be answered once with answerCallbackQuery. Returns the update id.
   */
  pressButton(
    user: FakeUser,
    message: { message_id: number; chat: { id: number } },
    data: string,
  ): number {
    const stored = this.#findMessage(message.chat.id, message.message_id);
    if (!stored?.fromBot) {
      throw new Error(
        `pressButton: the bot has no message ${message.message_id} in chat ${message.chat.id}`,
      );
    }
    const keyboard = (stored.message.reply_markup as Json | undefined)?.inline_keyboard;
    const buttons = Array.isArray(keyboard) ? (keyboard as Json[][]).flat() : [];
    if (!buttons.some((b) => b.callback_data === data)) {
      throw new Error(
        `pressButton: message ${message.message_id} has no button with callback_data ${
          JSON.stringify(data)
        }`,
      );
    }
    this.#rememberUser(user);
    if (message.chat.id === user.id) this.#startPrivate(user);
    const id = `${BigInt(user.id) * 1000000n + BigInt(++this.#queryCounter)}`;
    this.#openQueries.add(id);
    return this.pushUpdate({
      callback_query: {
        id,
        from: this.#userJson(user.id),
        message: structuredClone(stored.message),
        chat_instance: `${BigInt(message.chat.id) * 7919n + BigInt(this.botId)}`,
        data,
      },
    });
  }

  /**
   * Declares a channel (or updates it). getChatMember works there only when the bot is
   * an admin; otherwise "member list is inaccessible". Unknown chats are "chat not found".
   */
  addChannel(ch: { id: number; username?: string; title: string; botIsAdmin?: boolean }): void {
    this.#chats.set(ch.id, {
      id: ch.id,
      type: "channel",
      title: ch.title,
      username: ch.username,
      botIsAdmin: ch.botIsAdmin ?? false,
    });
  }

  /**
   * Sets a user's status in a declared chat (by id or @username): creator,
   * administrator, member, restricted (pass isMember, default true), left or kicked.
   * Users never set are "left".
   */
  setMember(channel: number | string, userId: number, status: string, isMember?: boolean): void {
    if (!MEMBER_STATUSES.has(status)) throw new Error(`setMember: unknown status ${status}`);
    const chat = typeof channel === "number"
      ? this.#chats.get(channel)
      : this.#chatByUsername(channel.replace(/^@/, ""));
    if (!chat) throw new Error(`setMember: declare ${channel} with addChannel first`);
    if (!this.#users.has(userId)) this.#users.set(userId, { id: userId });
    let members = this.#members.get(chat.id);
    if (!members) this.#members.set(chat.id, members = new Map());
    members.set(userId, {
      status,
      isMember: isMember ?? (status !== "left" && status !== "kicked"),
    });
  }
  /** The user blocks the bot (or unblocks it): sending to their chat then fails with 403. */
  blockBot(userId: number, blocked = true): void {
    if (blocked) this.#blocked.add(userId);
    else this.#blocked.delete(userId);
  }

  /**
   * The next `times` calls of `method` fail with this error. A 429 without parameters
   * gets `retry_after` from its "retry after N" description.
   */
  failNext(method: string, error: FakeApiError, times = 1): void {
    const parameters = error.parameters ??
      (error.error_code === 429
        ? { retry_after: Number(/retry after (\d+)/.exec(error.description)?.[1] ?? 1) }
        : undefined);
    this.#failures.set(method.toLowerCase(), { error: { ...error, parameters }, times });
  }

  /**
   * The first call of `method` (recorded at index `since` or later, default 0) that
   * matches `predicate`, already recorded or yet to come. Rejects after `timeoutMs`
   * (default 5000) listing the methods seen, or when the fake closes.
   */
  async waitForCall(
    method: string,
    predicate?: (c: RecordedCall) => boolean,
    opts?: { timeoutMs?: number; since?: number },
  ): Promise<RecordedCall> {
    return (await this.waitForCalls(method, 1, predicate, opts))[0];
  }

  /** The first `count` calls of `method` matching `predicate`; see waitForCall. */
  waitForCalls(
    method: string,
    count: number,
    predicate?: (c: RecordedCall) => boolean,
    opts: { timeoutMs?: number; since?: number } = {},
  ): Promise<RecordedCall[]> {
    const since = opts.since ?? 0;
    const timeoutMs = opts.timeoutMs ?? 5000;
    const m = method.toLowerCase();
    const found = () =>
      this.calls.slice(since).filter((c) =>
        c.method.toLowerCase() === m && (predicate ? predicate(c) : true)
      );
    const now = found();
    if (now.length >= count) return Promise.resolve(now.slice(0, count));
    if (this.#closed) return Promise.reject(new Error("FakeTelegram is closed"));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        check: () => {
          const calls = found();
          if (calls.length < count) return false;
          resolve(calls.slice(0, count));
          return true;
        },
        fail: reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          const seen = this.calls.slice(since).map((c) => `${c.method}${c.ok ? "" : "!"}`);
          reject(
            new Error(
              `waitFor ${count} × ${method} timed out after ${timeoutMs} ms; ${found().length} matched; calls seen since #${since}: ${
                seen.join(", ") || "none"
              }`,
            ),
          );
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  /** Messages the bot has in a chat now, in order, after edits and deletes. */
  chatMessages(chatId: number): FakeMessage[] {
    return (this.#messages.get(chatId) ?? []).filter((s) => s.fromBot).map((s) => {
      const m = s.message;
      const out: FakeMessage = { message_id: m.message_id as number, date: m.date as number };
      if (m.edit_date !== undefined) out.edit_date = m.edit_date as number;
      if (m.text !== undefined) out.text = m.text as string;
      if (m.entities !== undefined) out.entities = structuredClone(m.entities as Entity[]);
      if (m.caption !== undefined) out.caption = m.caption as string;
      if (m.caption_entities !== undefined) {
        out.caption_entities = structuredClone(m.caption_entities as Entity[]);
      }
      if (m.reply_markup !== undefined) out.reply_markup = structuredClone(m.reply_markup as Json);
      const reply = m.reply_to_message as Json | undefined;
      if (reply) out.reply_to_message_id = reply.message_id as number;
      if (s.document) out.document = { ...s.document, content: s.document.content.slice() };
      if (s.rich) out.rich = structuredClone(s.rich);
      return out;
    });
  }

  /** Every sendMessageDraft and sendRichMessageDraft that succeeded in a chat, in order. */
  chatDrafts(chatId: number): FakeDraft[] {
    return structuredClone(this.#drafts.get(chatId) ?? []);
  }

  /**
   * The draft the chat shows now: the last one, unless the bot sent a message since,
   * it was not updated for `draftTtlMs`, or its stop button hid it.
   */
  shownDraft(chatId: number): FakeDraft | undefined {
    const shown = this.#shownDrafts.get(chatId);
    if (!shown || Date.now() - shown.draft.at >= this.#draftTtlMs) return undefined;
    return structuredClone(shown.draft);
  }

  /**
   * The user presses the stop button of the draft shown in their private chat: queues
   * a `stopped_message_generation` update ({ chat, draft_id }, Bot API 10.3) and hides
   * the draft unless it was sent with keep_on_stop. Throws when no draft is shown or it
   * has no stop button (Telegram would show none). Returns the update id.
   */
  pressStop(chatId: number): number {
    const draft = this.shownDraft(chatId);
    const shown = this.#shownDrafts.get(chatId);
    if (!draft || !shown) throw new Error(`pressStop: chat ${chatId} shows no draft`);
    if (!draft.can_stop || shown.stopped) {
      throw new Error(`pressStop: draft ${draft.draft_id} in chat ${chatId} has no stop button`);
    }
    if (draft.keep_on_stop) shown.stopped = true;
    else this.#shownDrafts.delete(chatId);
    const chat = this.#chats.get(chatId)!;
    return this.pushUpdate({
      stopped_message_generation: { chat: this.#chatJson(chat), draft_id: draft.draft_id },
    });
  }

  /** Stops the server; a held getUpdates answers at once, pending waits reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#poll?.wake("closed");
    this.#webhook?.abort.abort();
    clearTimeout(this.#retryTimer);
    for (const s of this.#sleeps) {
      clearTimeout(s.timer);
      s.resolve();
    }
    this.#sleeps.clear();
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.fail(new Error("FakeTelegram closed while waiting"));
    }
    this.#waiters.clear();
    await Promise.all([...this.#deliveries]);
    await this.#server.shutdown();
  }

  // === HTTP

  async #handle(req: Request): Promise<Response> {
    const at = Date.now();
    const url = new URL(req.url);
    // A file download (telegram_files.ts): not a method call, not recorded in `calls`.
    const download = /^\/file\/bot([^/]*)\/(.+)$/.exec(url.pathname);
    if (download && req.method === "GET") {
      await this.#sleep(this.latencyMs);
      const ok = decodeURIComponent(download[1]) === this.token;
      return this.files.download(ok, download[2]);
    }
    const route = /^\/bot([^/]*)\/([^/]*)$/.exec(url.pathname);
    let params: Params = {};
    let files = new Map<string, UploadedFile>();
    let bodyError: ApiError | undefined;
    try {
      ({ params, files } = await this.#readParams(req));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      bodyError = e;
    }
    if (!route) {
      return await this.#answer(new ApiError(404, "Not Found"));
    }
    const token = decodeURIComponent(route[1]);
    const methodName = decodeURIComponent(route[2]);
    const entry = this.#methods.get(methodName.toLowerCase());
    const method = entry?.name ?? methodName;
    let outcome: unknown;
    let error: ApiError | undefined;
    try {
      if (token !== this.token) {
        throw TOKEN_RE.test(token)
          ? new ApiError(401, "Unauthorized")
          : new ApiError(404, "Not Found");
      }
      if (!entry) throw new ApiError(404, "Not Found");
      if (bodyError) throw bodyError;
      const failure = this.#failures.get(method.toLowerCase());
      if (failure) {
        if (--failure.times <= 0) this.#failures.delete(method.toLowerCase());
        throw new ApiError(
          failure.error.error_code,
          failure.error.description,
          failure.error.parameters,
        );
      }
      outcome = await entry.handler(params, { files });
    } catch (e) {
      if (e instanceof ApiError) error = e;
      else {
        error = new ApiError(500, `Internal Server Error: ${e instanceof Error ? e.message : e}`);
        console.error("FakeTelegram:", e);
      }
    }
    this.#recordOutcome(method, params, at, error ?? outcome);
    if (error) return await this.#answer(error);
    return await this.#answer({
      ok: true,
      result: outcome instanceof Described ? outcome.result : outcome,
      ...(outcome instanceof Described ? { description: outcome.description } : {}),
    });
  }

  async #answer(body: Json | ApiError): Promise<Response> {
    await this.#sleep(this.latencyMs);
    const payload = body instanceof ApiError ? errorBody(body) : body;
    const status = body instanceof ApiError ? body.code : 200;
    return new Response(JSON.stringify(payload), {
      status,
      headers: { "content-type": "application/json" },
    });
  }

  /** The parameters of a JSON or multipart/form-data body (as grammY sends them). */
  async #readParams(req: Request): Promise<{ params: Params; files: Map<string, UploadedFile> }> {
    const params: Params = {};
    const files = new Map<string, UploadedFile>();
    const type = req.headers.get("content-type") ?? "";
    if (/^multipart\/form-data/i.test(type)) {
      let form: FormData;
      try {
        form = await req.formData();
      } catch {
        throw bad("can't parse multipart/form-data request");
      }
      for (const [k, v] of form) {
        if (typeof v === "string") params[k] = typed(v);
        else files.set(k, { name: v.name, content: await v.bytes(), type: v.type });
      }
      return { params, files };
    }
    const text = await req.text();
    if (text === "") return { params, files };
    if (!/^application\/json/i.test(type)) {
      throw bad("FakeTelegram models only JSON and multipart/form-data parameters");
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw bad("can't parse JSON encoded request");
    }
    if (isObject(value)) {
      for (const [k, v] of Object.entries(value)) if (v !== null) params[k] = v;
    }
    return { params, files };
  }

  /** Records a call that ended with this outcome (a result, a Described result or an ApiError). */
  #recordOutcome(method: string, params: Params, at: number, outcome: unknown): void {
    const failed = outcome instanceof ApiError;
    this.calls.push({
      method,
      params,
      at,
      ok: !failed,
      ...(failed
        ? { error: { error_code: outcome.code, description: outcome.description } }
        : { result: structuredClone(outcome instanceof Described ? outcome.result : outcome) }),
    });
    for (const w of [...this.#waiters]) {
      if (w.check()) {
        clearTimeout(w.timer);
        this.#waiters.delete(w);
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = {
        resolve,
        timer: setTimeout(() => {
          this.#sleeps.delete(entry);
          resolve();
        }, ms),
      };
      this.#sleeps.add(entry);
    });
  }

  // === Users, chats, messages

  #rememberUser(user: FakeUser): void {
    const known: FakeUser = { ...this.#users.get(user.id), id: user.id };
    for (const [k, v] of Object.entries(user)) {
      if (v !== undefined) (known as unknown as Record<string, unknown>)[k] = v;
    }
    this.#users.set(user.id, known);
  }

  #startPrivate(user: FakeUser): ChatInfo {
    this.#rememberUser(user);
    this.#blocked.delete(user.id); // Writing to the bot again unblocks it.
    let chat = this.#chats.get(user.id);
    if (!chat) this.#chats.set(user.id, chat = { id: user.id, type: "private" });
    return chat;
  }

  #ensureGroup(
    group: { id: number; type: "group" | "supergroup"; title?: string },
    user: FakeUser,
  ): ChatInfo {
    this.#rememberUser(user);
    let chat = this.#chats.get(group.id);
    if (!chat) {
      chat = { id: group.id, type: group.type, title: group.title ?? `Group ${group.id}` };
      this.#chats.set(group.id, chat);
    }
    let members = this.#members.get(group.id);
    if (!members) this.#members.set(group.id, members = new Map());
    if (!members.has(user.id)) members.set(user.id, { status: "member", isMember: true });
    return chat;
  }

  #chatByUsername(username: string): ChatInfo | undefined {
    const u = username.toLowerCase();
    for (const chat of this.#chats.values()) {
      if (chat.type !== "private" && chat.username?.toLowerCase() === u) return chat;
    }
    return undefined;
  }

  #botJson(full = false): Json {
    return {
      id: this.botId,
      is_bot: true,
      first_name: "Fake Test Bot",
      username: this.botUsername,
      ...(full
        ? {
          can_join_groups: true,
          can_read_all_group_messages: false,
          supports_inline_queries: false,
          can_connect_to_business: false,
          has_main_web_app: false,
          has_topics_enabled: false,
          allows_users_to_create_topics: false,
          can_manage_bots: false,
          supports_join_request_queries: false,
        }
        : {}),
    };
  }

  #userJson(id: number): Json {
    if (id === this.botId) return this.#botJson();
    const u = this.#users.get(id);
    return {
      id,
      is_bot: false,
      first_name: u?.first_name ?? `User${id}`,
      ...(u?.username ? { username: u.username } : {}),
      ...(u?.language_code ? { language_code: u.language_code } : {}),
    };
  }

  #chatJson(chat: ChatInfo): Json {
    if (chat.type === "private") {
      const u = this.#userJson(chat.id);
      return {
        id: chat.id,
        first_name: u.first_name,
        ...(u.username ? { username: u.username } : {}),
        type: "private",
      };
    }
    return {
      id: chat.id,
      title: chat.title,
      ...(chat.username ? { username: chat.username } : {}),
      type: chat.type,
    };
  }

  /** A new message in `chat`, from the bot when `from` is undefined. */
  #newMessage(chat: ChatInfo, from: FakeUser | undefined, fields: Json): Json {
    const message_id = (this.#nextMessageId.get(chat.id) ?? 0) + 1;
    this.#nextMessageId.set(chat.id, message_id);
    const message: Json = { message_id };
    if (chat.type === "channel") message.sender_chat = this.#chatJson(chat);
    else message.from = from ? this.#userJson(from.id) : this.#botJson();
    message.chat = this.#chatJson(chat);
    message.date = unixNow();
    return Object.assign(message, fields);
  }

  #store(chatId: number, stored: StoredMessage): void {
    // A message from the bot replaces its draft.
    if (stored.fromBot) this.#shownDrafts.delete(chatId);
    let list = this.#messages.get(chatId);
    if (!list) this.#messages.set(chatId, list = []);
    list.push(stored);
  }

  #findMessage(chatId: number, messageId: number): StoredMessage | undefined {
    return this.#messages.get(chatId)?.find((s) => s.message.message_id === messageId);
  }

  /** chat_id as telegram-bot-api resolves it. */
  #chatArg(p: Params): ChatInfo {
    const raw = argString(p.chat_id).trim();
    if (raw === "") throw bad("chat_id is empty");
    let chat: ChatInfo | undefined;
    if (/^-?\d+$/.test(raw)) chat = this.#chats.get(Number(raw));
    else if (raw.startsWith("@")) chat = this.#chatByUsername(raw.slice(1));
    if (!chat) {
      if (/^\d+$/.test(raw) && Number(raw) > 0 && Number(raw) !== this.botId) {
        throw forbidden("bot can't initiate conversation with a user");
      }
      throw bad("chat not found");
    }
    return chat;
  }

  /** A chat the bot may post in. */
  #writableChat(p: Params): ChatInfo {
    const chat = this.#chatArg(p);
    if (chat.type === "private" && this.#blocked.has(chat.id)) {
      throw forbidden("bot was blocked by the user");
    }
    if (chat.type === "channel" && !chat.botIsAdmin) {
      throw forbidden("bot is not a member of the channel chat");
    }
    return chat;
  }

  #checkThread(p: Params): void {
    if (argInt(p.message_thread_id) > 0) throw bad("message thread not found");
  }

  #format(text: string, parseMode: unknown, entities: unknown): FormattedText {
    try {
      return formatText(text, parseMode === undefined ? undefined : argString(parseMode), entities);
    } catch (e) {
      if (e instanceof FormatError) throw bad(e.message);
      throw e;
    }
  }

  /**
   * The checks every send method makes after its content: reply, keyboard, chat, thread,
   * in telegram-bot-api's order. Returns what the new message needs.
   */
  #sendTarget(p: Params): SendTarget {
    const reply = this.#parseReply(p);
    const markup = this.#parseMarkup(p);
    const chat = this.#writableChat(p);
    this.#checkThread(p);
    const replyTo = this.#resolveReply(reply, chat);
    this.#checkMarkup(markup);
    return { chat, replyTo, markup };
  }

  /** Posts a new bot message with `content` as the target says; returns the Bot API's Message. */
  #post(
    { chat, replyTo, markup }: SendTarget,
    content: Json,
    extra: Pick<StoredMessage, "document" | "rich"> = {},
  ): Json {
    const message = this.#newMessage(chat, undefined, {
      ...(replyTo ? { reply_to_message: replyTo } : {}),
      ...content,
      ...(markup ? { reply_markup: markup } : {}),
    });
    this.#store(chat.id, { message, fromBot: true, ...extra });
    return structuredClone(message);
  }

  /** Checks TDLib applies when the message is sent. */
  #checkText(text: FormattedText, max: number, empty: string | undefined, tooLong: string): void {
    if (empty !== undefined && text.text === "") throw bad(empty);
    if (text.text.length > max) throw bad(tooLong);
  }

  #parseReply(p: Params): Json | undefined {
    const value = argJson(p.reply_parameters, "can't parse reply parameters JSON object");
    if (value !== undefined) {
      if (!isObject(value)) throw bad("object expected as reply parameters");
      if (Object.keys(value).length === 0) return undefined;
      if (value.message_id === undefined) throw bad(`can't find field "message_id"`);
      return value;
    }
    return undefined;
  }

  #resolveReply(reply: Json | undefined, chat: ChatInfo): Json | undefined {
    if (!reply) return undefined;
    const id = argInt(reply.message_id);
    if (id <= 0) return undefined;
    const target = reply.chat_id !== undefined ? this.#chatArg({ chat_id: reply.chat_id }) : chat;
    const found = this.#findMessage(target.id, id);
    if (!found) {
      if (argBool(reply.allow_sending_without_reply)) return undefined;
      throw bad("message to be replied not found");
    }
    const { reply_to_message: _nested, ...message } = structuredClone(found.message);
    return message;
  }

  /** reply_markup as telegram-bot-api reads an inline keyboard: structure errors. */
  #parseMarkup(p: Params): Json | undefined {
    const value = argJson(p.reply_markup, "can't parse reply keyboard markup JSON object");
    if (value === undefined) return undefined;
    if (!isObject(value)) throw bad("object expected as reply markup");
    for (const f of ["keyboard", "remove_keyboard", "hide_keyboard", "force_reply"]) {
      if (value[f] !== undefined) throw bad(`FakeTelegram does not model ${f} markup`);
    }
    const rows = value.inline_keyboard;
    if (rows === undefined || rows === null) return undefined;
    if (!Array.isArray(rows)) throw bad(`field "inline_keyboard" must be of type Array`);
    const inline = rows.map((row) => {
      if (!Array.isArray(row)) {
        throw bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays');
      }
      return row.map(parseInlineButton);
    });
    return inline.some((row) => row.length > 0) ? { inline_keyboard: inline } : undefined;
  }

  /** Checks TDLib makes on a keyboard when sending. */
  #checkMarkup(markup: Json | undefined): void {
    const buttons = ((markup?.inline_keyboard ?? []) as Json[][]).flat();
    if (buttons.length > 100) throw bad("reply markup is too long");
    for (const b of buttons) {
      if (
        typeof b.callback_data === "string" && new TextEncoder().encode(b.callback_data).length > 64
      ) {
        throw bad("BUTTON_DATA_INVALID");
      }
      if (typeof b.url === "string") {
        const link = checkLink(b.url);
        if ("error" in link) {
          throw bad(`inline keyboard button URL '${b.url}' is invalid: ${link.error}`);
        }
        b.url = link.url;
      }
    }
  }

  // === Methods

  #getMe(): Json {
    return this.#botJson(true);
  }

  #sendMessage(p: Params): Json {
    const text = this.#messageText(p);
    const target = this.#sendTarget(p);
    this.#checkText(text, 4096, "text must be non-empty", "message is too long");
    return this.#post(target, {
      text: text.text,
      ...(text.entities.length ? { entities: text.entities } : {}),
    });
  }

  /** `text` with its link preview options, as sendMessage and editMessageText read them. */
  #messageText(p: Params): FormattedText {
    checkLinkPreview(p);
    const raw = argString(p.text);
    if (raw === "") throw bad("message text is empty");
    return this.#format(raw, p.parse_mode, p.entities);
  }

  /** The message an edit refers to; inline messages are not modelled. */
  #messageToEdit(p: Params): StoredMessage {
    const messageId = argInt(p.message_id);
    if (argString(p.chat_id) === "" && messageId <= 0) {
      throw bad("message identifier is not specified");
    }
    const chat = this.#chatArg(p);
    if (messageId <= 0) throw bad("message identifier is not specified");
    const stored = this.#findMessage(chat.id, messageId);
    if (!stored) throw bad("message to edit not found");
    if (!stored.fromBot) throw bad("message can't be edited");
    return stored;
  }

  #editMessageText(p: Params): Json {
    const text = this.#messageText(p);
    const markup = this.#parseMarkup(p);
    const stored = this.#messageToEdit(p);
    if (stored.message.text === undefined) throw bad("there is no text in the message to edit");
    this.#checkMarkup(markup);
    this.#checkText(text, 4096, "text must be non-empty", "message is too long");
    const m = stored.message;
    if (
      m.text === text.text &&
      JSON.stringify(m.entities ?? []) === JSON.stringify(text.entities) &&
      JSON.stringify(m.reply_markup) === JSON.stringify(markup)
    ) {
      throw bad(NOT_MODIFIED);
    }
    m.text = text.text;
    if (text.entities.length) m.entities = text.entities;
    else delete m.entities;
    if (markup) m.reply_markup = markup;
    else delete m.reply_markup;
    m.edit_date = unixNow();
    return structuredClone(m);
  }

  #deleteMessage(p: Params): boolean {
    if (argString(p.chat_id) === "") throw bad("chat identifier is not specified");
    const messageId = argInt(p.message_id);
    if (messageId <= 0) throw bad("message identifier is not specified");
    const chat = this.#chatArg(p);
    const list = this.#messages.get(chat.id) ?? [];
    const index = list.findIndex((s) => s.message.message_id === messageId);
    if (index < 0) throw bad("message to delete not found");
    if (chat.type !== "private" && !list[index].fromBot && !chat.botIsAdmin) {
      throw bad("message can't be deleted");
    }
    list.splice(index, 1);
    return true;
  }

  #sendChatAction(p: Params): boolean {
    if (!CHAT_ACTIONS.has(argString(p.action).toLowerCase())) {
      throw bad("wrong parameter action in request");
    }
    this.#writableChat(p);
    this.#checkThread(p);
    return true;
  }

  /** An uploaded document; one sent again by file_id or fetched from a URL is not modelled. */
  #sendDocument(p: Params, ctx: Ctx): Json {
    const input = argString(p.document);
    if (input !== "" && !input.startsWith("attach://")) {
      throw bad("FakeTelegram models only uploaded documents");
    }
    const upload = ctx.files.get(input === "" ? "document" : input.slice("attach://".length));
    if (!upload) throw bad("there is no document in the request");
    const caption = this.#format(argString(p.caption), p.parse_mode, p.caption_entities);
    const target = this.#sendTarget(p);
    this.#checkText(caption, 1024, undefined, "message caption is too long");
    if (upload.content.length === 0) throw bad("file must be non-empty");
    const ext = /\.([a-zA-Z0-9]+)$/.exec(upload.name)?.[1]?.toLowerCase() ?? "";
    const declared = upload.type !== "application/octet-stream" ? upload.type : undefined;
    const document: FakeDocument = {
      file_name: upload.name,
      content: upload.content,
      mime_type: MIME_TYPES[ext] ?? declared ?? "application/octet-stream",
    };
    const n = ++this.#fileCounter;
    return this.#post(target, {
      document: {
        file_name: document.file_name,
        mime_type: document.mime_type,
        file_id: `BQACAgIAAxkDAAI${n.toString().padStart(4, "0")}fake`,
        file_unique_id: `AgAD${n}`,
        file_size: document.content.length,
      },
      ...(caption.text ? { caption: caption.text } : {}),
      ...(caption.text && caption.entities.length ? { caption_entities: caption.entities } : {}),
    }, { document });
  }

  #answerCallbackQuery(p: Params): boolean {
    const id = argString(p.callback_query_id);
    if (!this.#openQueries.has(id)) {
      throw bad("query is too old and response timeout expired or query ID is invalid");
    }
    if (argString(p.text).length > 200) throw bad("MESSAGE_TOO_LONG");
    this.#openQueries.delete(id);
    return true;
  }

  #getChatMember(p: Params): Json {
    const raw = argInt(p.user_id);
    if (raw <= 0) throw bad("invalid user_id specified");
    const chat = this.#chatArg(p);
    if (chat.type === "channel" && !chat.botIsAdmin) throw bad("member list is inaccessible");
    return this.#memberJson(chat, raw);
  }

  #memberJson(chat: ChatInfo, userId: number): Json {
    const user = this.#userJson(userId);
    const member = this.#members.get(chat.id)?.get(userId) ?? { status: "left", isMember: false };
    switch (member.status) {
      case "creator":
        return { user, status: "creator", is_anonymous: false };
      case "administrator":
        return this.#adminJson(user, chat);
      case "member":
        return { user, status: "member" };
      case "restricted":
        return {
          user,
          status: "restricted",
          is_member: member.isMember,
          ...RESTRICTED_RIGHTS,
          until_date: 0,
        };
      case "kicked":
        return { user, status: "kicked", until_date: 0 };
      default:
        return { user, status: "left" };
    }
  }

  #adminJson(user: Json, chat: ChatInfo): Json {
    const channel = chat.type === "channel";
    return {
      user,
      status: "administrator",
      can_be_edited: false,
      is_anonymous: false,
      can_manage_chat: true,
      can_change_info: true,
      ...(channel ? { can_post_messages: true, can_edit_messages: true } : {}),
      can_delete_messages: true,
      can_invite_users: true,
      can_restrict_members: true,
      ...(channel ? {} : { can_pin_messages: true }),
      ...(chat.type === "supergroup" ? { can_manage_topics: false } : {}),
      can_promote_members: false,
      can_manage_video_chats: true,
      can_post_stories: true,
      can_edit_stories: true,
      can_delete_stories: true,
      ...(channel ? { can_manage_direct_messages: false } : {}),
      can_send_welcome_messages: false,
    };
  }

  #getChat(p: Params): Json {
    const chat = this.#chatArg(p);
    if (chat.type === "channel" && !chat.botIsAdmin && !chat.username) throw bad("chat not found");
    return {
      ...this.#chatJson(chat),
      accent_color_id: 0,
      max_reaction_count: 11,
      accepted_gift_types: {
        unlimited_gifts: false,
        limited_gifts: false,
        unique_gifts: false,
        premium_subscription: false,
        gifts_from_channels: false,
      },
    };
  }

  #draftChat(p: Params): ChatInfo {
    const chatRaw = argString(p.chat_id).trim();
    if (chatRaw === "") throw bad("chat_id is empty");
    const known = this.#chats.get(Number(chatRaw));
    if (!/^\d+$/.test(chatRaw) || (known && known.type !== "private")) {
      throw bad("TEXTDRAFT_PEER_INVALID");
    }
    const chat = this.#writableChat(p);
    this.#checkThread(p);
    return chat;
  }

  /** Records the draft with its stop flags and shows it from now on. */
  #showDraft(
    chatId: number,
    p: Params,
    fields: Omit<FakeDraft, "at" | "can_stop" | "keep_on_stop">,
  ): true {
    const draft: FakeDraft = {
      ...fields,
      at: Date.now(),
      ...(p.can_stop !== undefined ? { can_stop: argBool(p.can_stop) } : {}),
      ...(p.keep_on_stop !== undefined ? { keep_on_stop: argBool(p.keep_on_stop) } : {}),
    };
    let list = this.#drafts.get(chatId);
    if (!list) this.#drafts.set(chatId, list = []);
    list.push(draft);
    this.#shownDrafts.set(chatId, { draft: structuredClone(draft), stopped: false });
    return true;
  }

  #sendMessageDraft(p: Params): boolean {
    const draftId = draftIdArg(p);
    const raw = argString(p.text);
    const text = raw === ""
      ? { text: "", entities: [] }
      : this.#format(raw, p.parse_mode, p.entities);
    const chat = this.#draftChat(p);
    this.#checkText(text, 4096, undefined, "message is too long");
    return this.#showDraft(chat.id, p, {
      draft_id: draftId,
      text: text.text,
      ...(text.entities.length ? { entities: text.entities } : {}),
      method: "sendMessageDraft",
    });
  }

  /** rich_message as telegram-bot-api reads it, parsed into blocks. */
  #richArg(p: Params): FakeRich {
    const value = argJson(p.rich_message, "can't parse rich message JSON object");
    if (value === undefined) throw bad(`parameter "rich_message" is required`);
    let content: RichContent;
    try {
      content = parseRichMessage(value);
    } catch (e) {
      if (e instanceof FormatError) throw bad(e.message);
      throw e;
    }
    return { ...content, markdown: (value as { markdown: string }).markdown };
  }

  #sendRichMessageDraft(p: Params): boolean {
    const draftId = draftIdArg(p);
    const chat = this.#draftChat(p);
    const rich = this.#richArg(p);
    return this.#showDraft(chat.id, p, {
      draft_id: draftId,
      text: rich.text,
      method: "sendRichMessageDraft",
      rich,
    });
  }

  #sendRichMessage(p: Params): Json {
    const rich = this.#richArg(p);
    return this.#post(this.#sendTarget(p), { rich_message: { blocks: rich.blocks } }, { rich });
  }

  // === Commands

  #setMyCommands(p: Params): boolean {
    const value = argJson(p.commands, "can't parse commands JSON object");
    if (value === undefined) throw bad(`parameter "commands" is required`);
    if (!Array.isArray(value)) throw bad("expected an Array of BotCommand");
    for (const c of value) {
      if (!isObject(c)) throw bad("can't parse BotCommand: expected an Object");
      for (const f of ["command", "description"]) {
        if (c[f] === undefined) throw bad(`can't parse BotCommand: Can't find field "${f}"`);
        if (typeof c[f] !== "string") {
          throw bad(`can't parse BotCommand: Field "${f}" must be of type String`);
        }
      }
    }
    if (p.scope !== undefined) throw bad("FakeTelegram does not model command scopes");
    const language = argString(p.language_code);
    if (language !== "" && !/^[a-z]{2}$/.test(language)) {
      throw bad("invalid language code specified");
    }
    if (value.length > 100) throw bad("BOT_COMMANDS_TOO_MUCH");
    for (const c of value as Record<string, string>[]) {
      const command = c.command.trim().replace(/^\//, "");
      if (command === "") throw bad("command must be non-empty");
      if (command.length > 32) throw bad("command is too long");
      if (!/^[a-z0-9_]+$/.test(command)) throw bad("BOT_COMMAND_INVALID");
      if (c.description.trim() === "") throw bad("command description must be non-empty");
    }
    return true;
  }

  // === Updates: long polling

  #isAllowed(type: string): boolean {
    return this.#allowedUpdates ? this.#allowedUpdates.has(type) : !OPT_IN_UPDATES.has(type);
  }

  /** allowed_updates as telegram-bot-api reads it: a bad value keeps the old setting. */
  #updateAllowed(value: unknown): void {
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) return;
    // Unknown names are dropped by Telegram; here they simply never match an update.
    const set = new Set((value as string[]).map((v) => v.toLowerCase()));
    this.#allowedUpdates = set.size === 0 ? undefined : set;
  }

  /** Drops the updates an offset confirms (a negative offset is not modelled). */
  #confirm(offset: number): void {
    if (offset > 0 && offset <= this.#lastUpdateId + 1) {
      this.#pending = this.#pending.filter((u) => (u.update_id as number) >= offset);
    }
  }

  async #getUpdates(p: Params): Promise<Json[]> {
    if (this.#webhook) throw conflict(WEBHOOK_ACTIVE);
    const offset = argInt(p.offset);
    const limit = argInt(p.limit, 100, 1, 100);
    const timeout = argInt(p.timeout, 0, 0, 50);
    this.#updateAllowed(p.allowed_updates);
    this.#confirm(offset);
    if (this.#pending.length > 0 || timeout === 0 || this.#closed) {
      return structuredClone(this.#pending.slice(0, limit));
    }
    this.#poll?.wake("other");
    const reason = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => poll.wake("timeout"), timeout * 1000);
      const poll: HeldPoll = {
        wake: (why) => {
          clearTimeout(timer);
          if (this.#poll === poll) this.#poll = undefined;
          resolve(why);
        },
      };
      this.#poll = poll;
    });
    if (reason === "other") throw conflict(GETUPDATES_CONFLICT);
    if (reason === "webhook") throw conflict("Conflict: terminated by setWebhook request");
    return structuredClone(this.#pending.slice(0, limit));
  }

  // === Updates: webhook

  #setWebhook(p: Params): Described {
    const url = argString(p.url);
    if (url === "") return this.#deleteWebhook(p);
    const now = Date.now();
    if (now < this.#lastSetWebhook + 1000) {
      throw new ApiError(429, "Too Many Requests: retry after 1", { retry_after: 1 });
    }
    this.#lastSetWebhook = now;
    let parsed: URL;
    try {
      parsed = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `https://${url}`);
    } catch {
      throw bad("invalid webhook URL specified");
    }
    const secret = argString(p.secret_token);
    if (secret.length > 256) throw bad("secret token is too long");
    if (!/^[A-Za-z0-9_-]*$/.test(secret)) throw bad("secret token contains unallowed characters");
    const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(parsed.hostname);
    if (parsed.protocol !== "https:" && !(loopback && parsed.protocol === "http:")) {
      throw bad("bad webhook: An HTTPS URL must be provided for webhook");
    }
    const port = parsed.port === ""
      ? (parsed.protocol === "https:" ? 443 : 80)
      : Number(parsed.port);
    if (!loopback && ![80, 88, 443, 8443].includes(port)) {
      throw bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443");
    }
    const maxConnections = argInt(p.max_connections, 40, 1, 100);
    const old = this.#webhook;
    if (argBool(p.drop_pending_updates)) this.#pending = [];
    this.#updateAllowed(p.allowed_updates);
    if (old && old.url === url && old.secret === secret && old.maxConnections === maxConnections) {
      return new Described(true, "Webhook is already set");
    }
    old?.abort.abort();
    this.#poll?.wake("webhook");
    this.#inFlight.clear();
    this.#notBefore.clear();
    this.#webhook = { url, secret, maxConnections, abort: new AbortController() };
    this.#pumpWebhook();
    return new Described(true, "Webhook was set");
  }

  #deleteWebhook(p: Params): Described {
    if (argBool(p.drop_pending_updates)) this.#pending = [];
    if (!this.#webhook) return new Described(true, "Webhook is already deleted");
    this.#webhook.abort.abort();
    this.#webhook = undefined;
    this.#inFlight.clear();
    this.#notBefore.clear();
    return new Described(true, "Webhook was deleted");
  }

  /**
   * Starts deliveries: like telegram-bot-api, updates of one chat (or one user's
   * queries) go one at a time and in order, different chats in parallel up to
   * max_connections; a failed one is retried after WEBHOOK_RETRY_MS.
   */
  #pumpWebhook(): void {
    const hook = this.#webhook;
    if (!hook || this.#closed) return;
    const busy = new Set<string>();
    let wait = Infinity;
    const now = Date.now();
    for (const update of this.#pending) {
      const key = queueKey(update);
      if (busy.has(key)) continue;
      busy.add(key);
      const id = update.update_id as number;
      if (this.#inFlight.has(id)) continue;
      if (this.#inFlight.size >= hook.maxConnections) break;
      const notBefore = this.#notBefore.get(id) ?? 0;
      if (notBefore > now) {
        wait = Math.min(wait, notBefore - now);
        continue;
      }
      this.#inFlight.add(id);
      const delivery = this.#deliver(hook, update)
        .catch((e) => console.error("FakeTelegram: webhook delivery failed:", e))
        .finally(() => this.#deliveries.delete(delivery));
      this.#deliveries.add(delivery);
    }
    if (wait !== Infinity && this.#retryTimer === undefined) {
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        this.#pumpWebhook();
      }, wait);
    }
  }

  async #deliver(hook: Webhook, update: Json): Promise<void> {
    const id = update.update_id as number;
    let failure: string | undefined;
    try {
      const res = await fetch(hook.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(hook.secret ? { "x-telegram-bot-api-secret-token": hook.secret } : {}),
        },
        body: JSON.stringify(update),
        signal: hook.abort.signal,
      });
      // A method call in the answer (a webhook reply) is not modelled: grammY makes none.
      await res.body?.cancel();
      if (res.ok) {
        this.#pending = this.#pending.filter((u) => u !== update);
        this.#notBefore.delete(id);
      } else failure = `Wrong response from the webhook: ${res.status} ${res.statusText}`;
    } catch (e) {
      if (hook.abort.signal.aborted) return;
      failure = `Connection refused: ${e instanceof Error ? e.message : e}`;
    }
    if (this.#webhook !== hook) return;
    this.#inFlight.delete(id);
    if (failure) this.#notBefore.set(id, Date.now() + WEBHOOK_RETRY_MS);
    this.#pumpWebhook();
  }
}

/** The webhook queue an update belongs to: its chat, or the user who caused it. */
function queueKey(update: Json): string {
  const body = Object.entries(update).find(([k]) => k !== "update_id")?.[1] as Json | undefined;
  const chat = (body?.chat ?? (body?.message as Json | undefined)?.chat) as Json | undefined;
  if (chat && typeof chat.id === "number") return `chat:${chat.id}`;
  const from = (body?.from ?? body?.user) as Json | undefined;
  if (from && typeof from.id === "number") return `user:${from.id}`;
  return `update:${update.update_id}`;
}

function buttonError(message: string): ApiError {
  return bad(`can't parse inline keyboard button: ${message}`);
}

/** Button actions the bot never uses; telegram-bot-api would accept them. */
const UNMODELLED_ACTIONS = [
  "callback_game",
  "pay",
  "switch_inline_query",
  "switch_inline_query_chosen_chat",
  "switch_inline_query_current_chat",
  "login_url",
  "web_app",
  "copy_text",
];

/** One InlineKeyboardButton, read like telegram-bot-api: the first action present wins. */
function parseInlineButton(button: unknown): Json {
  if (!isObject(button)) throw buttonError("InlineKeyboardButton must be an Object");
  const text = requiredString(button, "text", buttonError);
  for (const f of ["url", "callback_data"]) {
    const v = button[f];
    if (v === undefined || v === null || v === "") continue;
    if (typeof v !== "string" && typeof v !== "number") {
      throw buttonError(`Field "${f}" must be of type String`);
    }
    return { text, [f]: String(v) };
  }
  const other = UNMODELLED_ACTIONS.find((f) => f in button);
  if (other) throw bad(`FakeTelegram does not model ${other} buttons`);
  throw buttonError("Text buttons are unallowed in the inline keyboard");
}

function requiredString(obj: Json, field: string, error: (m: string) => ApiError): string {
  const v = obj[field];
  if (v === undefined || v === null) throw error(`Can't find field "${field}"`);
  if (typeof v !== "string" && typeof v !== "number") {
    throw error(`Field "${field}" must be of type String`);
  }
  return String(v);
}
