/**
 * The preview of an answer while the assistant writes it: message drafts (Bot API 9.5
 * `sendMessageDraft`, 10.1 `sendRichMessageDraft`) with Telegram's stop button, or one
 * edited message where drafts are refused. The preview only shows; `deliver.ts`
 * persists the final answer (and completes the edited messages in edit mode).
 *
 * Why not @grammyjs/stream (1.1, read and dropped from deno.json): its loops send a
 * draft for every chunk as fast as Telegram answers, with no "Thinking…" placeholder,
 * no refresh of a draft left alone for ~30 s (it expires), one final `sendRichMessage`
 * with no 32768 split and no fallback when a method is missing (404) or refused, no
 * stop button, and its AbortSignal also cancels the final message, while a stopped
 * answer must still be persisted. So the bookkeeping is done here, in the plugin's
 * pull/push shape: `push()` records the text, one pump loop sends the latest state.
 *
 * Bot API calls of the preview in draft mode (the normal case), in order:
 * 1. `sendMessageDraft(text: "", can_stop, keep_on_stop)`: Telegram's "Thinking…"
 *    placeholder, at once (every draft carries the stop button; keep_on_stop leaves the
 *    draft up until the final message replaces it);
 * 2. `sendRichMessageDraft(rich_message.markdown = the text so far)`, the first as soon
 *    as the first token arrives (no wait), then at most one per `draftIntervalMs`
 *    (300 ms; longer past 500 characters, in proportion to the text, since each
 *    draft carries all of it) with the latest text, coalescing what arrived meanwhile; the same draft
 *    is sent again after `draftRefreshMs` (20 s) without news, so a long pause (a
 *    tool call, a slow model) never lets the ~30 s preview expire. Past 32768
 *    characters the draft shows the last part under the next draft id. In html or
 *    plain format the drafts are `sendMessageDraft` with Telegram HTML (or plain
 *    text), showing the last 4096-character part.
 * Then the delivery step sends the final message(s), which also replace the draft.
 * There is never more than one preview call in flight, and none after `stop()`.
 *
 * Fallbacks, decided while the answer streams:
 * - `sendRichMessageDraft` 404 (remembered for the process) → HTML drafts; a 400 (say,
 *   half-written Markdown) skips that state, and the third 400 → HTML drafts for the
 *   answer; an HTML draft Telegram cannot parse → plain drafts;
 * - `sendMessageDraft` 404 (remembered) or 400 (drafts not allowed in this chat) →
 *   **edit mode** (`edits.ts`): one `sendMessage` at the first token, then
 *   `editMessageText` with the text so far as Telegram HTML, at least `editIntervalMs`
 *   (1 s) apart, rolling over into a new message past 4096 characters;
 * - anything else (blocked bot, network) → no more previews; the final still goes.
 */
import type { Api } from "grammy";
import type { Logger } from "@logtape/logtape";
import { markdownToHtml, visibleText } from "./render.ts";
import { RICH_TEXT_LIMIT, richChunks, splitForTelegram } from "./split.ts";
import { isBadRequest, isEntityError, isMissingMethod } from "./telegram_errors.ts";
import type { ApiSupport, ReplyFormat } from "./deliver.ts";
import { EditedAnswer } from "./edits.ts";
import { type Clock, systemClock } from "../clock.ts";

/** Pacing of the previews; the defaults suit Telegram, tests pass smaller ones. */
export interface PreviewTiming {
  /**
   * Least time between two draft updates while the text is short; the first text goes
   * out at once. Past {@link DRAFT_GROWTH_CHARS} characters it grows with the text, so
   * the characters sent per second (each draft carries the whole text) stay the same
   * and an answer's cost grows with its length, not with its square. Default 300.
   */
  draftIntervalMs: number;
  /** A draft not updated for this long is sent again (drafts expire after ~30 s). Default 20000. */
  draftRefreshMs: number;
  /** Least time between two sends or edits in the edit mode. Default 1000. */
  editIntervalMs: number;
  /** How long `stop` lets a draft call in flight complete before aborting it. Default 1000. */
  finishGraceMs: number;
}

/** Text length (characters) up to which drafts go out every `draftIntervalMs`. */
export const DRAFT_GROWTH_CHARS = 500;

/** The longest interval between drafts with news, however long the text: the preview stays alive. */
export const DRAFT_MAX_INTERVAL_MS = 2500;

export const DEFAULT_TIMING: PreviewTiming = {
  draftIntervalMs: 300,
  draftRefreshMs: 20_000,
  editIntervalMs: 1000,
  finishGraceMs: 1000,
};

export interface PreviewOptions {
  api: Api;
  /** A private chat (drafts exist only there). */
  chatId: number;
  /** The first draft id (non-zero); a part past the draft limit uses the next ids. */
  draftId: number;
  /** The user's message; the first message of the edit mode replies to it. */
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
  timing?: Partial<PreviewTiming>;
  /** Paces the previews (tests drive it by hand); default the system clock. */
  clock?: Clock;
}

/** How previews are shown: drafts, one edited message, or none (after an unexpected error). */
export type PreviewMode = "draft" | "edit" | "off";

/** What the preview left on screen when it stopped, for the delivery step. */
export interface Shown {
  mode: PreviewMode;
  /** In edit mode: the messages showing the answer so far, to be completed in place. */
  edited?: EditedAnswer;
}

type DraftKind = "rich" | "html" | "plain";

/** The reason for aborting a wait that is over: any value spares building a DOMException. */
const ENDED = "ended";

/** grammY's Node build types its signals with the abort-controller package's AbortSignal. */
type ApiSignal = NonNullable<Parameters<Api["sendMessageDraft"]>[4]>;

interface Waiter {
  wakeOnPush: boolean;
  resolve: (why: "deadline" | "push" | "closed") => void;
}

/**
 * The preview of one answer in one chat. `start()` shows the placeholder, `push()`
 * adds text as it arrives, `stop()` ends the previews and tells the delivery step
 * what is on screen. See the module comment for the calls.
 */
export class Preview {
  readonly #o: PreviewOptions;
  readonly #t: PreviewTiming;
  readonly #clock: Clock;
  #mode: PreviewMode;
  #kind: DraftKind;
  #text = "";
  #version = 0;
  #closed = false;
  #started = false;
  #pump: Promise<void> = Promise.resolve();
  #waiter: Waiter | undefined;
  #inflight: AbortController | undefined;
  /** Some of the text so far shows something (monotone: more text never hides it). */
  #visible = false;
  // Draft mode.
  #draftVersion = -1;
  #lastDraftAt = -Infinity;
  #textShown = false;
  #announced = new Set<number>();
  #richRefusals = 0;
  // Edit mode.
  #edited: EditedAnswer | undefined;
  #editVersion = -1;
  // Measurements.
  #firstTokenAt: number | undefined;
  #firstTextAt: number | undefined;

  constructor(options: PreviewOptions) {
    this.#o = options;
    this.#t = { ...DEFAULT_TIMING, ...options.timing };
    this.#clock = options.clock ?? systemClock;
    const { support, format } = options;
    this.#mode = support.isMissing("sendMessageDraft") ? "edit" : "draft";
    this.#kind = format === "rich" && support.isMissing("sendRichMessageDraft") ? "html" : format;
  }

  /** The current preview mode. */
  get mode(): PreviewMode {
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
    if (this.#firstTokenAt === undefined && this.#showsText()) {
      this.#firstTokenAt = this.#clock.now();
    }
    if (this.#waiter?.wakeOnPush) this.#waiter.resolve("push");
  }

  /**
   * Ends the previews: waits for the call in flight (a draft call gets `finishGraceMs`,
   * then is aborted so it cannot land after the final message) and resolves with what
   * is on screen. Sends nothing itself.
   */
  async stop(): Promise<Shown> {
    this.#closed = true;
    this.#waiter?.resolve("closed");
    if (this.#inflight) {
      const graceOver = new AbortController();
      await Promise.race([this.#pump, this.#clock.sleep(this.#t.finishGraceMs, graceOver.signal)]);
      graceOver.abort(ENDED);
      this.#inflight?.abort();
    }
    await this.#pump;
    return { mode: this.#mode, edited: this.#edited };
  }

  /** Notes that the final answer is on screen (for the first-text measure). */
  delivered(): void {
    this.#markVisible();
  }

  // -------------------------------------------------------------------------

  /**
   * Whether the text so far shows anything: half-written Markdown ("##", "```") may
   * not. Rendered only until it does, so the cost stays bounded by the opening tokens.
   */
  #showsText(): boolean {
    if (this.#visible) return true;
    if (!this.#text.trim()) return false;
    this.#visible = this.#kind === "plain" || visibleText(markdownToHtml(this.#text)).trim() !== "";
    return this.#visible;
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

  /** Waits until `deadline` (the clock's time), a push (when asked) or the end. */
  #wait(deadline: number, wakeOnPush: boolean): Promise<"deadline" | "push" | "closed"> {
    if (this.#closed) return Promise.resolve("closed");
    const ms = deadline - this.#clock.now();
    if (ms <= 0) return Promise.resolve("deadline");
    return new Promise((resolve) => {
      const over = new AbortController();
      const done = (why: "deadline" | "push" | "closed") => {
        if (over.signal.aborted) return;
        over.abort(ENDED);
        if (this.#waiter === waiter) this.#waiter = undefined;
        resolve(why);
      };
      const waiter: Waiter = { wakeOnPush, resolve: done };
      this.#waiter = waiter;
      if (Number.isFinite(ms)) this.#clock.sleep(ms, over.signal).then(() => done("deadline"));
    });
  }

  #markVisible(): void {
    if (this.#textShown) return;
    this.#textShown = true;
    this.#firstTextAt = this.#clock.now();
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
      const interval = Math.min(
        DRAFT_MAX_INTERVAL_MS,
        this.#t.draftIntervalMs * Math.max(1, this.#text.length / DRAFT_GROWTH_CHARS),
      );
      const why = await this.#wait(this.#lastDraftAt + interval, false);
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
    const hasText = this.#showsText();
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
    this.#lastDraftAt = this.#clock.now();
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
    this.#edited ??= new EditedAnswer({
      api: this.#o.api,
      chatId: this.#o.chatId,
      replyTo: this.#o.replyTo,
      plain: this.#kind === "plain",
      intervalMs: this.#t.editIntervalMs,
      log: this.#o.log,
      clock: this.#clock,
    });
    const why = await this.#wait(this.#edited.readyAt, false);
    if (why === "closed") return;
    const version = this.#version;
    if (await this.#edited.step(this.#text)) this.#markVisible();
    else this.#editVersion = version;
  }
}

/** A draft id for an answer to `messageId`: non-zero, distinct per message, room for 16 parts. */
export function draftIdFor(messageId: number): number {
  return 1 + ((messageId * 16) % 2_000_000_000);
}
