/**
 * Streaming an answer to a private chat while the assistant writes it, then
 * persisting it: message drafts (Bot API 9.5 `sendMessageDraft`, 10.1
 * `sendRichMessageDraft`) as the preview, one final message through the fallback
 * chain of `deliver.ts`.
 *
 * Why not @grammyjs/stream (1.1, read and dropped from deno.json): its loops send a
 * draft for every chunk as fast as Telegram answers, with no "Thinking…" placeholder,
 * no refresh of a draft left alone for ~30 s (it expires), one final `sendRichMessage`
 * with no 32768 split and no fallback when a method is missing (404) or refused, no
 * stop button, and its AbortSignal also cancels the final message, while a stopped
 * answer must still be persisted. So the bookkeeping is done here, in the plugin's
 * pull/push shape: `push()` records the text, one pump loop sends the latest state.
 *
 * Bot API calls for one answer in draft mode (the normal case), in order:
 * 1. `sendMessageDraft(text: "", can_stop, keep_on_stop)`: Telegram's "Thinking…"
 *    placeholder, at once (every draft carries the stop button; keep_on_stop leaves the
 *    draft up until the final message replaces it);
 * 2. `sendRichMessageDraft(rich_message.markdown = the text so far)`, the first as soon
 *    as the first token arrives (no wait), then at most one per `draftIntervalMs`
 *    (300 ms) with the latest text, coalescing what arrived meanwhile; the same draft
 *    is sent again after `draftRefreshMs` (20 s) without news, so a long pause (a
 *    tool call, a slow model) never lets the ~30 s preview expire. Past 32768
 *    characters the draft shows the last part under the next draft id. In html or
 *    plain format the drafts are `sendMessageDraft` with Telegram HTML (or plain
 *    text), showing the last 4096-character part;
 * 3. the final message(s) from `deliverAnswer` (rich → HTML → plain), which also
 *    replaces the draft.
 * There is never more than one call in flight, and none after the final message.
 *
 * Fallbacks, decided while the answer streams:
 * - `sendRichMessageDraft` 404 (remembered for the process) → HTML drafts; a 400 (say,
 *   half-written Markdown) skips that state, and the third 400 → HTML drafts for the
 *   answer; an HTML draft Telegram cannot parse → plain drafts;
 * - `sendMessageDraft` 404 (remembered) or 400 (drafts not allowed in this chat) →
 *   **edit mode**: one `sendMessage` at the first token, then `editMessageText` with
 *   the text so far as Telegram HTML. Every send or edit in a chat is at least
 *   `editIntervalMs` (1 s) after the previous one, the final state included (Telegram
 *   allows about one message a second per chat; answers are streamed in private chats
 *   only, so the 20-a-minute group limit never applies). Past 4096 characters the
 *   edited message is completed and the answer rolls over into a new message, so the
 *   final messages are exactly `splitForTelegram(answer)`. An HTML part Telegram
 *   refuses is shown as plain text.
 * - anything else (blocked bot, network) → no more previews; the final still goes.
 */
import type { Api } from "grammy";
import type { Logger } from "@logtape/logtape";
import { type Chunk, markdownToHtml, splitForTelegram, visibleText } from "./format.ts";
import {
  type ApiSupport,
  deliverAnswer,
  type Delivered,
  isBadRequest,
  isEntityError,
  isMissingMethod,
  isNotModified,
  type ReplyFormat,
  RICH_TEXT_LIMIT,
  richChunks,
  sendChunk,
  type SentMessage,
} from "./deliver.ts";

/** Pacing of the previews; the defaults suit Telegram, tests pass smaller ones. */
export interface StreamTiming {
  /** Least time between two draft updates; the first text goes out at once. Default 300. */
  draftIntervalMs: number;
  /** A draft not updated for this long is sent again (drafts expire after ~30 s). Default 20000. */
  draftRefreshMs: number;
  /** Least time between two sends or edits in the edit mode. Default 1000. */
  editIntervalMs: number;
  /** How long `finish` lets a draft call in flight complete before aborting it. Default 1000. */
  finishGraceMs: number;
}

export const DEFAULT_TIMING: StreamTiming = {
  draftIntervalMs: 300,
  draftRefreshMs: 20_000,
  editIntervalMs: 1000,
  finishGraceMs: 1000,
};

export interface AnswerStreamOptions {
  api: Api;
  /** A private chat (drafts exist only there). */
  chatId: number;
  /** The first draft id (non-zero); a part past the draft limit uses the next ids. */
  draftId: number;
  /** The user's message; the first persisted message replies to it. */
  replyTo?: number;
  format: ReplyFormat;
  support: ApiSupport;
  log?: Logger;
  /** Show Telegram's stop button on drafts (default true). */
  canStop?: boolean;
  /** Told each draft id before it is first shown (a stop press names the draft). */
  onDraftId?: (draftId: number) => void;
  /** Called once, when the first text of the answer is visible to the user. */
  onFirstText?: () => void;
  timing?: Partial<StreamTiming>;
}

/** How previews are shown: drafts, one edited message, or none (after an unexpected error). */
export type StreamMode = "draft" | "edit" | "off";

type DraftKind = "rich" | "html" | "plain";

/** grammY's Node build types its signals with the abort-controller package's AbortSignal. */
type ApiSignal = NonNullable<Parameters<Api["sendMessageDraft"]>[4]>;

interface Waiter {
  wakeOnPush: boolean;
  resolve: (why: "deadline" | "push" | "closed") => void;
}

interface EditedMessage {
  message: SentMessage;
  /** The text last sent (HTML, or plain when `plain`). */
  shown: string;
  /** Telegram refused this part's HTML once: keep it plain. */
  plain: boolean;
}

/**
 * One answer being streamed to one chat. `start()` shows the placeholder, `push()`
 * adds text as it arrives, and `finish()` persists the final answer (or `abandon()`
 * ends the previews when the answer failed). See the module comment for the calls.
 */
export class AnswerStream {
  readonly #o: AnswerStreamOptions;
  readonly #t: StreamTiming;
  #mode: StreamMode;
  #kind: DraftKind;
  #text = "";
  #version = 0;
  #closed = false;
  #started = false;
  #pump: Promise<void> = Promise.resolve();
  #waiter: Waiter | undefined;
  #inflight: AbortController | undefined;
  // Draft mode.
  #draftVersion = -1;
  #lastDraftAt = -Infinity;
  #textShown = false;
  #announced = new Set<number>();
  #richRefusals = 0;
  // Edit mode.
  #edited: EditedMessage[] = [];
  #editVersion = -1;
  #lastEditAt = -Infinity;
  // Measurements.
  #firstTokenAt: number | undefined;
  #firstTextAt: number | undefined;

  constructor(options: AnswerStreamOptions) {
    this.#o = options;
    this.#t = { ...DEFAULT_TIMING, ...options.timing };
    const { support, format } = options;
    this.#mode = support.isMissing("sendMessageDraft") ? "edit" : "draft";
    this.#kind = format === "rich" && support.isMissing("sendRichMessageDraft") ? "html" : format;
  }

  /** The current preview mode. */
  get mode(): StreamMode {
    return this.#mode;
  }

  /** Milliseconds from the first token to its first visible preview; undefined before that. */
  get firstTextMs(): number | undefined {
    return this.#firstTokenAt === undefined || this.#firstTextAt === undefined
      ? undefined
      : this.#firstTextAt - this.#firstTokenAt;
  }

  /** Starts the previews: the "Thinking…" placeholder draft goes out at once. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#pump = this.#run();
  }

  /** Adds a piece of the answer; the preview follows (throttled, never blocking). */
  push(delta: string): void {
    if (this.#closed || delta === "") return;
    this.#text += delta;
    this.#version++;
    if (this.#firstTokenAt === undefined && this.#showsText(this.#text)) {
      this.#firstTokenAt = performance.now();
    }
    if (this.#waiter?.wakeOnPush) this.#waiter.resolve("push");
  }

  /**
   * Ends the previews and persists `markdown` (the whole answer, notes included):
   * through `deliverAnswer` in draft mode, or as the final state of the edited
   * messages in edit mode. Resolves with what was sent.
   */
  async finish(markdown: string): Promise<Delivered> {
    await this.#stop(this.#mode === "draft");
    // Parts already shown are completed in place (also when previews stopped on an error).
    if (this.#edited.length > 0) {
      const format = this.#kind === "plain" ? "plain" : "html";
      await this.#syncEdits(markdown);
      return { messages: this.#edited.map((e) => e.message), format };
    }
    const delivered = await deliverAnswer(this.#o.api, this.#o.chatId, markdown, {
      replyTo: this.#o.replyTo,
      format: this.#o.format,
      support: this.#o.support,
      log: this.#o.log,
    });
    this.#markVisible();
    return delivered;
  }

  /** Ends the previews without a final message (the answer failed; the caller says so). */
  async abandon(): Promise<void> {
    await this.#stop(true);
  }

  // -------------------------------------------------------------------------

  /** Whether `text` shows anything yet: half-written Markdown ("##", "```") may not. */
  #showsText(text: string): boolean {
    if (!text.trim()) return false;
    return this.#kind === "plain" || visibleText(markdownToHtml(text)).trim() !== "";
  }

  async #stop(abortDrafts: boolean): Promise<void> {
    this.#closed = true;
    this.#waiter?.resolve("closed");
    if (abortDrafts && this.#inflight) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.#t.finishGraceMs);
      });
      await Promise.race([this.#pump, grace]);
      clearTimeout(timer);
      // A draft stuck in a 429 wait must not land after the final message.
      this.#inflight?.abort();
    }
    await this.#pump;
  }

  async #run(): Promise<void> {
    try {
      while (!this.#closed) {
        if (this.#mode === "draft") await this.#draftStep();
        else if (this.#mode === "edit") await this.#editStep();
        else await this.#wait(Infinity, false);
      }
    } catch (error) {
      // Previews are best effort; the final message does not depend on them.
      this.#o.log?.warning("Answer previews stopped: {error}", { error });
      this.#mode = "off";
    }
  }

  /** Waits until `deadline` (performance.now() time), a push (when asked) or the end. */
  #wait(deadline: number, wakeOnPush: boolean): Promise<"deadline" | "push" | "closed"> {
    if (this.#closed) return Promise.resolve("closed");
    const ms = deadline - performance.now();
    if (ms <= 0) return Promise.resolve("deadline");
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => done("deadline"), ms) : undefined;
      const done = (why: "deadline" | "push" | "closed") => {
        clearTimeout(timer);
        if (this.#waiter === waiter) this.#waiter = undefined;
        resolve(why);
      };
      const waiter: Waiter = { wakeOnPush, resolve: done };
      this.#waiter = waiter;
    });
  }

  #markVisible(): void {
    if (this.#textShown) return;
    this.#textShown = true;
    this.#firstTextAt = performance.now();
    this.#o.onFirstText?.();
  }

  // ----- drafts

  async #draftStep(): Promise<void> {
    if (this.#version === this.#draftVersion) {
      // Nothing new: wait for text, or refresh the draft before it expires.
      const why = await this.#wait(this.#lastDraftAt + this.#t.draftRefreshMs, true);
      if (why === "deadline") await this.#sendDraft(true);
      return;
    }
    if (this.#textShown) {
      const why = await this.#wait(this.#lastDraftAt + this.#t.draftIntervalMs, false);
      if (why === "closed") return;
    }
    await this.#sendDraft(false);
  }

  #draftIdAt(part: number): number {
    const id = this.#o.draftId + part;
    if (!this.#announced.has(id)) {
      this.#announced.add(id);
      this.#o.onDraftId?.(id);
    }
    return id;
  }

  /** Sends the latest state as a draft; `refresh` sends it even when it is already shown. */
  async #sendDraft(refresh: boolean): Promise<void> {
    const version = this.#version;
    const text = this.#text;
    const hasText = this.#showsText(text);
    if (!hasText && this.#draftVersion >= 0 && !this.#textShown && !refresh) {
      // Still nothing to show: the placeholder already says "Thinking…".
      this.#draftVersion = version;
      return;
    }
    const { api, chatId } = this.#o;
    const stop = this.#o.canStop ?? true;
    const other = { can_stop: stop, keep_on_stop: stop };
    const controller = new AbortController();
    this.#inflight = controller;
    const signal = controller.signal as unknown as ApiSignal;
    let method = "sendMessageDraft";
    this.#lastDraftAt = performance.now();
    try {
      if (!hasText) {
        await api.sendMessageDraft(chatId, this.#draftIdAt(0), "", other, signal);
      } else if (this.#kind === "rich") {
        method = "sendRichMessageDraft";
        const parts = text.length <= RICH_TEXT_LIMIT ? [text] : richChunks(text);
        const id = this.#draftIdAt(parts.length - 1);
        await api.sendRichMessageDraft(chatId, id, { markdown: parts.at(-1)! }, other, signal);
      } else {
        const chunks = splitForTelegram(text);
        const id = this.#draftIdAt(chunks.length - 1);
        const last = chunks.at(-1)!;
        if (this.#kind === "html") {
          await api.sendMessageDraft(
            chatId,
            id,
            last.html,
            { ...other, parse_mode: "HTML" },
            signal,
          );
        } else {
          await api.sendMessageDraft(chatId, id, last.text, other, signal);
        }
      }
      this.#draftVersion = version;
      if (hasText) this.#markVisible();
    } catch (error) {
      if (signal.aborted) return;
      this.#draftFailed(method, error, version);
    } finally {
      if (this.#inflight === controller) this.#inflight = undefined;
    }
  }

  #draftFailed(method: string, error: unknown, version: number): void {
    const { log, support } = this.#o;
    const missing = isMissingMethod(error);
    if (missing) support.markMissing(method);
    if (method === "sendRichMessageDraft" && isBadRequest(error) && ++this.#richRefusals < 3) {
      // Likely half-written Markdown Telegram cannot take yet: skip this state, try the next.
      log?.debug("A rich draft was refused: {error}", { error });
      this.#draftVersion = version;
      return;
    }
    if (method === "sendRichMessageDraft") {
      if (!missing) {
        log?.info("Rich drafts refused; HTML drafts for this answer: {error}", { error });
      }
      this.#kind = "html";
      return;
    }
    if (this.#kind === "html" && isEntityError(error)) {
      this.#kind = "plain";
      return;
    }
    if (missing || isBadRequest(error)) {
      log?.info("Drafts refused in chat {chatId}; editing one message instead: {error}", {
        chatId: this.#o.chatId,
        error,
      });
      this.#mode = "edit";
      return;
    }
    log?.warning("A draft failed; no more previews for this answer: {error}", { error });
    this.#mode = "off";
  }

  // ----- edit mode

  async #editStep(): Promise<void> {
    if (this.#version === this.#editVersion || !this.#text.trim()) {
      await this.#wait(Infinity, true);
      return;
    }
    const why = await this.#wait(this.#lastEditAt + this.#t.editIntervalMs, false);
    if (why === "closed") return;
    const version = this.#version;
    const next = this.#nextEdit(this.#text);
    if (!next) {
      this.#editVersion = version;
      return;
    }
    this.#lastEditAt = performance.now();
    await this.#editCall(next.chunk, next.index);
    this.#markVisible();
  }

  /** The first part whose message is missing or shows something else, if any. */
  #nextEdit(markdown: string): { chunk: Chunk; index: number } | undefined {
    const chunks = splitForTelegram(markdown);
    const index = chunks.findIndex((chunk, i) =>
      i >= this.#edited.length || this.#edited[i].shown !== this.#wanted(chunk, i).text
    );
    return index < 0 ? undefined : { chunk: chunks[index], index };
  }

  #wanted(chunk: Chunk, index: number): { text: string; html: boolean } {
    const plain = this.#kind === "plain" || (this.#edited[index]?.plain ?? false);
    return plain ? { text: chunk.text, html: false } : { text: chunk.html, html: true };
  }

  /** One send (a new part) or one edit (an existing part); HTML refused → plain text. */
  async #editCall(chunk: Chunk, index: number): Promise<void> {
    const existing = this.#edited[index];
    if (!existing) {
      this.#edited.push(await this.#sendPart(chunk, index, this.#kind !== "plain"));
      return;
    }
    const wanted = this.#wanted(chunk, index);
    try {
      existing.message = await this.#edit(existing.message.message_id, wanted.text, wanted.html);
    } catch (error) {
      if (isNotModified(error)) {
        // Already shows it.
      } else if (wanted.html && isEntityError(error)) {
        existing.plain = true;
        existing.shown = chunk.text;
        existing.message = await this.#edit(existing.message.message_id, chunk.text, false);
        return;
      } else if (isBadRequest(error)) {
        // Deleted by the user, or no longer editable: send the part anew.
        this.#edited[index] = await this.#sendPart(chunk, index, wanted.html);
        return;
      } else throw error;
    }
    existing.shown = wanted.text;
  }

  async #sendPart(chunk: Chunk, index: number, html: boolean): Promise<EditedMessage> {
    const replyTo = index === 0 ? this.#o.replyTo : undefined;
    const { message, plain } = await sendChunk(
      this.#o.api,
      this.#o.chatId,
      chunk,
      html ? "html" : "plain",
      replyTo,
    );
    return { message, shown: plain ? chunk.text : chunk.html, plain };
  }

  async #edit(messageId: number, text: string, html: boolean): Promise<SentMessage> {
    const edited = await this.#o.api.editMessageText(this.#o.chatId, messageId, text, {
      ...(html ? { parse_mode: "HTML" as const } : {}),
      link_preview_options: { is_disabled: true },
    });
    return edited as SentMessage;
  }

  /**
   * Brings the edited messages to the final `markdown`, one call per `editIntervalMs`;
   * parts no longer needed are deleted.
   */
  async #syncEdits(markdown: string): Promise<void> {
    const pace = async () => {
      const ms = this.#lastEditAt + this.#t.editIntervalMs - performance.now();
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
      this.#lastEditAt = performance.now();
    };
    for (let next = this.#nextEdit(markdown); next; next = this.#nextEdit(markdown)) {
      await pace();
      await this.#editCall(next.chunk, next.index);
    }
    const count = Math.max(1, splitForTelegram(markdown).length);
    while (this.#edited.length > count) {
      const extra = this.#edited.pop()!;
      await pace();
      await this.#o.api.deleteMessage(this.#o.chatId, extra.message.message_id).catch((error) =>
        this.#o.log?.debug("Could not delete a surplus part: {error}", { error })
      );
    }
  }
}

/** A draft id for an answer to `messageId`: non-zero, distinct per message, room for 16 parts. */
export function draftIdFor(messageId: number): number {
  return 1 + ((messageId * 16) % 2_000_000_000);
}
