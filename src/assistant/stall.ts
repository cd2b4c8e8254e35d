/**
 * Stall detection around any {@link Assistant}: a model that stops sending is noticed
 * within a bounded time, the upstream call is aborted, and the user is told.
 *
 * Two timeouts, each off when 0:
 * - `firstTokenMs` (`OPENAI_FIRST_TOKEN_TIMEOUT`): no text within it of asking. The
 *   call is aborted and, when `retry` is set, asked once more from scratch; if the
 *   second call stalls too (or `retry` is off), `ask` throws an
 *   {@link AssistantError} of kind `stalled`.
 * - `idleMs` (`OPENAI_IDLE_TIMEOUT`): no text for that long once some arrived (also
 *   between the last delta and the end of the stream). The call is aborted and `ask`
 *   returns normally with what was yielded: `{ status: "incomplete", stalled: true }`.
 *
 * Why a partial answer is returned rather than thrown: the caller has already shown
 * that text (drafts), and throwing would leave it to the caller to remember it.
 * Returning an {@link Answer} keeps one path for "the answer ended": the chat handler
 * makes the text the final message, with a note, exactly as for an answer cut short
 * by the model (`incomplete`); `stalled` lets it pick a more precise note.
 * Such an answer carries no `commit`: where the bot keeps the history, a stalled turn
 * is not kept (its note asks the user to send the message again).
 *
 * Retrying is only safe when an aborted call leaves nothing in the conversation, or
 * the user's message would be in it twice. That holds for the Responses +
 * Conversations backend: a response whose stream is aborted is not stored in its
 * conversation, neither its input nor its partial output (see the header of
 * tests/fakes/openai.ts for the reports this rests on). It does not hold for the
 * legacy Assistants backend, which adds the user's message to the thread before the
 * run starts; `createAssistant` (src/app.ts) turns `retry` off there.
 *
 * Aborting the caller's `signal` still works as without this wrapper (the upstream
 * call sees it through a linked AbortController) and is never taken for a stall.
 * Only the time spent waiting for the backend counts, never the time the caller takes
 * to handle a delta; no timer is left once `ask` ends. Timers come from `clock`,
 * so tests drive them by hand.
 *
 * A timed-out call is not waited for: the stall is reported at once, and the
 * abandoned call is aborted and closed in the background (a backend that does not
 * honour the signal promptly cannot hold the user past the timeout).
 */
import { getLogger, type Logger } from "@logtape/logtape";
import { type Clock, systemClock } from "../clock.ts";
import { type Answer, type Assistant, AssistantError, type UserInput } from "./assistant.ts";

/**
 * The deadline of one call's current wait for the backend. A delta only moves the
 * deadline; the timer is set again only when it fires early (or the limit changes),
 * so a streamed answer costs a timer or two, not one per token (the bench measured
 * about 15 µs a token for a timer per wait). A timer that fires while the caller holds
 * a delta does nothing: the caller's time is not the model's.
 */
class Watch {
  /** Told when the current wait is over its deadline; unset while none runs. */
  #onStall: (() => void) | undefined;
  #deadline = Infinity;
  #limit = 0;
  /** Aborts the pending timer; undefined when none is pending. */
  #timer: AbortController | undefined;
  #due = Infinity;

  constructor(private readonly clock: Clock) {}

  /**
   * A wait for the backend begins; it may last `ms`. Resolves with {@link STALLED}
   * once it is over its deadline (and never when the wait ends first: a promise per
   * wait, so nothing piles up on one that lives as long as the answer).
   */
  wait(ms: number): Promise<typeof STALLED> {
    const stalled = new Promise<typeof STALLED>((resolve) => {
      this.#onStall = () => resolve(STALLED);
    });
    this.#deadline = this.clock.now() + ms;
    if (this.#timer === undefined || ms !== this.#limit || this.#due > this.#deadline) {
      this.#limit = ms;
      this.#arm(ms);
    }
    return stalled;
  }

  /** The wait ended: the backend answered. */
  idle(): void {
    this.#onStall = undefined;
  }

  /** No timer is left. */
  stop(): void {
    this.#timer?.abort("stopped");
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    this.stop();
    const timer = new AbortController();
    this.#timer = timer;
    this.#due = this.clock.now() + ms;
    this.clock.sleep(ms, timer.signal).then(() => {
      if (!timer.signal.aborted) this.#fire();
    });
  }

  #fire(): void {
    this.#timer = undefined;
    if (!this.#onStall) return;
    const left = this.#deadline - this.clock.now();
    if (left <= 0) this.#onStall();
    else this.#arm(left);
  }
}

export interface StallOptions {
  /** Milliseconds from asking to the first text; 0 = no limit. */
  firstTokenMs: number;
  /** Milliseconds between texts (and from the last one to the end); 0 = no limit. */
  idleMs: number;
  /**
   * Ask once more after a first-token stall. Only where an aborted call adds nothing to
   * the conversation (see the module comment).
   */
  retry: boolean;
  /** Times the waits (tests drive it by hand); default the system clock. */
  clock?: Clock;
  /** Default the `["bot", "assistant"]` logger. */
  log?: Logger;
}

const STALLED = Symbol("stalled");

/**
 * Wraps `assistant` so its `ask` enforces the timeouts; `history` and `reset` pass
 * through. With both timeouts 0 the assistant is returned as it is.
 *
 * ```ts
 * const assistant = withStallDetection(backend, { firstTokenMs: 30_000, idleMs: 60_000, retry: true });
 * ```
 */
export function withStallDetection(assistant: Assistant, options: StallOptions): Assistant {
  const { firstTokenMs, idleMs } = options;
  if (firstTokenMs <= 0 && idleMs <= 0) return assistant;
  const clock = options.clock ?? systemClock;
  const log = options.log ?? getLogger(["bot", "assistant"]);
  const attempts = options.retry ? 2 : 1;
  const seconds = (ms: number) => ms / 1000;

  /** The backend's next step, or {@link STALLED} when none came within `ms` (0: no limit). */
  async function nextWithin(
    turn: AsyncGenerator<string, Answer>,
    watch: Watch,
    ms: number,
  ): Promise<IteratorResult<string, Answer> | typeof STALLED> {
    const next = turn.next();
    if (ms <= 0) return await next;
    // When the stall wins the race, this step settles later, unobserved.
    next.catch(() => {});
    try {
      return await Promise.race([next, watch.wait(ms)]);
    } finally {
      watch.idle();
    }
  }

  async function* ask(
    userId: number,
    input: UserInput,
    signal?: AbortSignal,
  ): AsyncGenerator<string, Answer> {
    for (let attempt = 1;; attempt++) {
      const upstream = new AbortController();
      const follow = () => upstream.abort(signal?.reason);
      if (signal?.aborted) follow();
      else signal?.addEventListener("abort", follow, { once: true });
      const turn = assistant.ask(userId, input, upstream.signal);
      const watch = new Watch(clock);
      let shown = "";
      let ended = false;
      try {
        for (;;) {
          const step = await nextWithin(turn, watch, shown ? idleMs : firstTokenMs);
          if (step === STALLED) break;
          if (step.done) {
            ended = true;
            return step.value;
          }
          shown += step.value;
          yield step.value;
        }
      } finally {
        watch.stop();
        signal?.removeEventListener("abort", follow);
        // Stalled, failed, or the caller stopped reading: stop the call and let the
        // backend close its stream (after its pending step, if any).
        if (!ended) {
          upstream.abort(new Error("stalled"));
          turn.return({ text: "", status: "aborted" }).catch(() => {});
        }
      }

      if (signal?.aborted) return { text: shown, status: "aborted" };
      if (shown) {
        log.warning(
          "The model stopped sending for {userId}: no text for {seconds} s after {chars} " +
            "characters (OPENAI_IDLE_TIMEOUT); the call was aborted and the text so far kept",
          { userId, seconds: seconds(idleMs), chars: shown.length },
        );
        return { text: shown, status: "incomplete", stalled: true };
      }
      if (attempt < attempts) {
        log.warning(
          "The model sent no text for {userId} within {seconds} s (OPENAI_FIRST_TOKEN_TIMEOUT): " +
            "the call was aborted; asking once more",
          { userId, seconds: seconds(firstTokenMs) },
        );
        continue;
      }
      throw new AssistantError(
        "stalled",
        `the model sent no text within ${seconds(firstTokenMs)} s` +
          `${attempts > 1 ? ", twice" : ""} (OPENAI_FIRST_TOKEN_TIMEOUT): OpenAI (or ` +
          "OPENAI_BASE_URL) may be degraded; for a slow reasoning model raise the timeout",
      );
    }
  }

  return {
    kind: assistant.kind,
    ask,
    history: (userId, limit) => assistant.history(userId, limit),
    reset: (userId) => assistant.reset(userId),
    checkServed: assistant.checkServed && (() => assistant.checkServed!()),
  };
}
