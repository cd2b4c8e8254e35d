/**
 * The frame of the backends whose server keeps nothing between requests
 * (`OPENAI_API=responses` and `chat`): every turn sends the instructions, the user's
 * stored history (`history.ts`) and the new message; the backend's {@link Turn} makes
 * the one streamed request and this frame does the rest, the same for both:
 *
 * - reasoning written into the answer (`<think>…</think>`) is filtered out (`think.ts`);
 * - a stopped answer returns what was generated until the stop, status `aborted`;
 * - errors become {@link AssistantError}s (a context-length error: `contextFull`);
 * - the turn is stored by `answer.commit(shownText)` after delivery (see
 *   `assistant.ts`), with the answer as shown, never with the reasoning, and the
 *   user's input as its label: the transcript, the caption and markers for the
 *   images and files, never their bytes (they go in this turn's request only).
 */
import { APIUserAbortError, type OpenAI } from "openai";
import type { UserFields } from "./identity.ts";
import type { Logger } from "@logtape/logtape";
import {
  type Answer,
  type Assistant,
  AssistantError,
  type HistoryMessage,
  type Usage,
  type UserInput,
} from "./assistant.ts";
import { toAssistantError } from "./errors.ts";
import { type History, type StoredMessage, toHistory } from "./history.ts";
import { ThinkFilter } from "./think.ts";

/** What one request needs: the stored history (oldest first) and the new input. */
export interface TurnRequest {
  userId: number;
  past: StoredMessage[];
  input: UserInput;
  signal?: AbortSignal;
}

/** How a streamed request ended (the frame decides `aborted`). */
export interface TurnResult {
  usage?: Usage;
  status: "completed" | "incomplete";
}

/**
 * One streamed request: yields the answer's raw text deltas, returns usage and status.
 * Throws the SDK's errors (or an {@link AssistantError}); stops reading when `signal`
 * aborts.
 */
export type Turn = (request: TurnRequest) => AsyncGenerator<string, TurnResult>;

export interface StatelessAssistantOptions {
  kind: "responses" | "chat";
  history: History;
  turn: Turn;
  /** The start-up check of the API. */
  checkServed: () => Promise<void>;
  log: Logger;
}

/** What the two stateless backends (`responses`, `chat`) are built from. */
export interface BackendOptions extends Pick<StatelessAssistantOptions, "history" | "log"> {
  client: OpenAI;
  model: string;
  instructions?: string;
  /** The output limit (`MAX_OUTPUT_TOKENS`); undefined: the model's own. */
  maxOutputTokens?: number;
  /** The endpoint is OpenAI itself. */
  official?: boolean;
  /** The hashed per-user fields; undefined: none are sent. */
  userFields?: (userId: number) => Promise<UserFields>;
}

/** What bounds the context on these backends, for the operator's log line. */
export const HISTORY_CONTEXT_FIX = "lower HISTORY_MAX_TOKENS below the model's context window";

/** Creates a backend that keeps the history in the bot's store. */
export function createStatelessAssistant(options: StatelessAssistantOptions): Assistant {
  const { kind, history, turn, log } = options;

  function committer(userId: number, text: string): (shownText: string) => Promise<void> {
    let done = false;
    return async (shownText) => {
      if (done) return;
      done = true;
      if (!shownText.trim()) return;
      try {
        await history.append(userId, text, shownText);
      } catch (error) {
        log.warning("The history of {userId} was not saved: {error}", { userId, error });
      }
    };
  }

  async function* ask(
    userId: number,
    input: UserInput,
    signal?: AbortSignal,
  ): AsyncGenerator<string, Answer> {
    let past: StoredMessage[];
    try {
      past = await history.load(userId);
    } catch (error) {
      throw new AssistantError("unavailable", `reading the history from the store: ${error}`, {
        cause: error,
      });
    }
    const think = new ThinkFilter();
    let answer = "";
    let result: TurnResult | undefined;
    const stream = turn({ userId, past, input, signal });
    try {
      let step = await stream.next();
      // Deltas already buffered still arrive after an abort: stop reading them.
      while (!step.done && !signal?.aborted) {
        const visible = think.push(step.value);
        if (visible) {
          answer += visible;
          yield visible;
        }
        step = await stream.next();
      }
      if (step.done) result = step.value;
    } catch (error) {
      if (!(error instanceof APIUserAbortError) && !signal?.aborted) {
        throw toAssistantError(error, `streaming a ${kind} answer`, HISTORY_CONTEXT_FIX);
      }
    } finally {
      await stream.return({ status: "completed" }).catch(() => {});
    }
    const rest = think.end();
    if (rest && !signal?.aborted) yield rest;
    answer += rest;
    const final: Answer = {
      text: answer,
      usage: result?.usage,
      status: signal?.aborted || !result ? "aborted" : result.status,
      commit: committer(userId, input.label ?? input.text),
    };
    return final;
  }

  async function readHistory(userId: number, limit?: number): Promise<HistoryMessage[]> {
    try {
      return toHistory(await history.load(userId), limit);
    } catch (error) {
      throw new AssistantError("unavailable", `reading the history from the store: ${error}`, {
        cause: error,
      });
    }
  }

  return {
    kind,
    ask,
    history: readHistory,
    reset: (userId) => history.clear(userId),
    checkServed: options.checkServed,
  };
}
