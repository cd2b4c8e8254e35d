/**
 * The legacy backend: OpenAI's Assistants API (threads and runs), for servers that
 * still serve it. The flow is the Python bot's, streamed: one thread per user
 * (`POST /threads` on the first message), `POST /threads/{id}/messages`, then
 * `POST /threads/{id}/runs` with `stream: true`, yielding `thread.message.delta` text.
 *
 * Text only: a voice note's transcript goes as text; images and files are refused
 * with an `unsupportedInput` error before anything is sent (the bot does not upload
 * files to the server's file store for this legacy API).
 *
 * A run left active by a crash blocks new messages ("Can't add messages to thread_…
 * while a run run_… is active"): that run is cancelled once and the message re-sent.
 */
import { APIUserAbortError, BadRequestError, NotFoundError, type OpenAI } from "openai";
import type { Store } from "../store/store.ts";
import { keys } from "../store/keys.ts";
import {
  type Answer,
  type Assistant,
  AssistantError,
  hasMedia,
  type HistoryMessage,
  pageSize,
  readBackwards,
  type Usage,
  type UserInput,
} from "./assistant.ts";
import { toAssistantError } from "./errors.ts";

export interface AssistantsAssistantOptions {
  client: OpenAI;
  store: Store;
  assistantId: string;
}

type ThreadMessage = Awaited<
  ReturnType<OpenAI["beta"]["threads"]["messages"]["list"]>
>["data"][number];

/** A thread message as history, when it is user or assistant text. */
export function messageToHistory(message: ThreadMessage): HistoryMessage | undefined {
  if (message.role !== "user" && message.role !== "assistant") return undefined;
  const text = message.content
    .map((part) => part.type === "text" ? part.text.value : undefined)
    .filter((t): t is string => t !== undefined)
    .join("\n");
  return { role: message.role, text, at: new Date(message.created_at * 1000) };
}

const ACTIVE_RUN = /(run_[A-Za-z0-9]+) is active|active run (run_[A-Za-z0-9]+)/;

/** Creates the Assistants API (threads and runs) backend. */
export function createAssistantsAssistant(options: AssistantsAssistantOptions): Assistant {
  const { client, store, assistantId } = options;
  const threads = client.beta.threads;

  async function newThread(userId: number): Promise<string> {
    try {
      const thread = await threads.create({ metadata: { telegram_user_id: String(userId) } });
      await store.set(keys.conversation(userId), thread.id);
      return thread.id;
    } catch (error) {
      throw toAssistantError(error, "creating a thread");
    }
  }

  async function storedThread(userId: number): Promise<string | undefined> {
    const id = await store.get(keys.conversation(userId));
    return id?.startsWith("thread_") ? id : undefined;
  }

  async function cancelActiveRun(threadId: string, error: unknown): Promise<boolean> {
    const runId = error instanceof BadRequestError
      ? error.message.match(ACTIVE_RUN)?.slice(1).find(Boolean)
      : undefined;
    if (!runId) return false;
    try {
      await threads.runs.cancel(runId, { thread_id: threadId });
      // A cancelled run passes through "cancelling"; wait until it has really ended.
      await threads.runs.poll(runId, { thread_id: threadId }, { pollIntervalMs: 250 });
    } catch {
      // Already finished between the calls: the retry will tell.
    }
    return true;
  }

  async function addMessage(userId: number, threadId: string, text: string): Promise<string> {
    try {
      await threads.messages.create(threadId, { role: "user", content: text });
      return threadId;
    } catch (error) {
      if (error instanceof NotFoundError) {
        const fresh = await newThread(userId);
        await threads.messages.create(fresh, { role: "user", content: text });
        return fresh;
      }
      if (await cancelActiveRun(threadId, error)) {
        await threads.messages.create(threadId, { role: "user", content: text });
        return threadId;
      }
      throw error;
    }
  }

  async function* ask(
    userId: number,
    input: UserInput,
    signal?: AbortSignal,
  ): AsyncGenerator<string, Answer> {
    if (hasMedia(input)) {
      throw new AssistantError(
        "unsupportedInput",
        "the Assistants backend takes text only, so images and files are refused: " +
          "OPENAI_API=conversations, responses or chat with a vision model take them",
      );
    }
    const text = input.text;
    let answer = "";
    let usage: Usage | undefined;
    let status: Answer["status"] = "completed";
    let run: { id: string; threadId: string } | undefined;
    // A run keeps going at OpenAI after the stream is dropped: cancel it so the
    // thread takes the next message at once.
    const aborted = (): Answer => {
      if (run) threads.runs.cancel(run.id, { thread_id: run.threadId }).catch(() => {});
      return { text: answer, usage, status: "aborted" };
    };
    try {
      const threadId = await addMessage(
        userId,
        await storedThread(userId) ?? await newThread(userId),
        text,
      );
      const stream = await threads.runs.create(
        threadId,
        { assistant_id: assistantId, stream: true },
        { signal },
      );
      for await (const event of stream) {
        // Deltas already buffered still arrive after an abort: stop reading them.
        if (signal?.aborted) break;
        switch (event.event) {
          case "thread.run.created":
            run = { id: event.data.id, threadId };
            break;
          case "thread.message.delta":
            for (const part of event.data.delta.content ?? []) {
              if (part.type === "text" && part.text?.value) {
                answer += part.text.value;
                yield part.text.value;
              }
            }
            break;
          case "thread.run.completed":
          case "thread.run.incomplete":
            if (event.event === "thread.run.incomplete") status = "incomplete";
            if (event.data.usage) {
              usage = {
                inputTokens: event.data.usage.prompt_tokens,
                outputTokens: event.data.usage.completion_tokens,
              };
            }
            break;
          case "thread.run.requires_action":
            // Tools are not supported: free the thread instead of leaving it blocked.
            await threads.runs.cancel(event.data.id, { thread_id: threadId });
            throw new AssistantError(
              "failed",
              "the assistant asked for a tool call, which this bot does not run: " +
                "remove function tools from the assistant",
            );
          case "thread.run.failed":
          case "thread.run.expired":
          case "thread.run.cancelled":
            throw new AssistantError(
              "failed",
              `run ${event.event.slice("thread.run.".length)}: ${
                event.data.last_error?.message ?? "no reason given"
              }`,
            );
        }
      }
    } catch (error) {
      if (error instanceof APIUserAbortError || signal?.aborted) return aborted();
      throw toAssistantError(error, "running the assistant");
    }
    return signal?.aborted ? aborted() : { text: answer, usage, status };
  }

  async function history(userId: number, limit?: number): Promise<HistoryMessage[]> {
    const threadId = await storedThread(userId);
    if (!threadId) return [];
    try {
      const items = threads.messages.list(threadId, { order: "desc", limit: pageSize(limit) });
      return await readBackwards(items, messageToHistory, limit);
    } catch (error) {
      if (error instanceof NotFoundError) return [];
      throw toAssistantError(error, "reading the thread");
    }
  }

  async function reset(userId: number): Promise<void> {
    await store.delete(keys.conversation(userId));
  }

  return { kind: "assistants", ask, history, reset };
}
