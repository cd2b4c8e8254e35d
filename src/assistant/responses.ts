/**
 * The default backend (`OPENAI_API=conversations`): OpenAI's Responses API with one
 * Conversation per user. Model and instructions come from the configuration (OpenAI's
 * guidance after the Assistants API and stored prompts were shut down).
 *
 * Calls made for one `ask`: `POST /conversations` (first message only, or when the
 * stored id is unknown or belongs to the Assistants backend), then `POST /responses`
 * with `stream: true` (the input as text, or as content parts with images and files:
 * `parts.ts`). A 404 for the stored conversation starts a new one once.
 *
 * The context stays bounded: each request carries `context_management: [{ type:
 * "compaction", compact_threshold }]` (`CONTEXT_COMPACT_TOKENS`), so once the
 * conversation passes the threshold the server compacts the older items into one
 * compaction item and goes on from there. Should a request still not fit (a model with
 * a smaller window than the threshold assumes), the user is told to /reset.
 */
import { APIUserAbortError, BadRequestError, NotFoundError, type OpenAI } from "openai";
import type { Store } from "../store/store.ts";
import { keys } from "../store/keys.ts";
import {
  type Answer,
  type Assistant,
  type HistoryMessage,
  pageSize,
  readBackwards,
  type Usage,
  type UserInput,
} from "./assistant.ts";
import { failedResponse, toAssistantError } from "./errors.ts";
import type { UserFields } from "./identity.ts";
import { checkServed } from "./served.ts";
import { stripThink, ThinkFilter } from "./think.ts";
import { responseInput } from "./parts.ts";
import { fileMarker, imagesMarker, withMarkers } from "../media/label.ts";
import { responseEvents } from "./sse.ts";

export interface ResponsesAssistantOptions {
  client: OpenAI;
  store: Store;
  model: string;
  instructions?: string;
  /** `compact_threshold` in tokens (`CONTEXT_COMPACT_TOKENS`); undefined: no compaction. */
  compactTokens?: number;
  /** `max_output_tokens` (`MAX_OUTPUT_TOKENS`); undefined: the model's own limit. */
  maxOutputTokens?: number;
  /** The hashed per-user fields; undefined: none are sent. */
  userFields?: (userId: number) => Promise<UserFields>;
}

const LOCKED_RETRIES = 4;
const LOCKED_DELAY_MS = 500;

type ConversationItem = Awaited<
  ReturnType<OpenAI["conversations"]["items"]["list"]>
>["data"][number];

/**
 * The text of a conversation item when it is a user or assistant message; images and
 * files read back as markers (`[photo] caption`, `[file report.pdf]`), never as bytes.
 */
export function itemToMessage(item: ConversationItem): HistoryMessage | undefined {
  if (item.type !== "message" || (item.role !== "user" && item.role !== "assistant")) {
    return undefined;
  }
  const texts: string[] = [];
  const files: string[] = [];
  let images = 0;
  for (const part of item.content) {
    if (part.type === "input_text" || part.type === "output_text") texts.push(part.text);
    else if (part.type === "input_image") images++;
    else if (part.type === "input_file") files.push(fileMarker(part.filename ?? "file"));
  }
  const text = texts.join("\n");
  if (item.role === "assistant") return { role: "assistant", text: stripThink(text) };
  return { role: "user", text: withMarkers([imagesMarker(images), ...files], text) };
}

/** Whether a 404 is about the conversation (OpenAI: `param` "conversation", or its message). */
function isConversationGone(error: NotFoundError): boolean {
  return error.param === "conversation" || /conversation/i.test(error.message);
}

/** Creates the Responses + Conversations backend. */
export function createResponsesAssistant(options: ResponsesAssistantOptions): Assistant {
  const { client, store, model, instructions, compactTokens, maxOutputTokens } = options;
  const contextFix = compactTokens === undefined
    ? "compaction is off: set CONTEXT_COMPACT_TOKENS below the model's context window"
    : "lower CONTEXT_COMPACT_TOKENS below the model's context window";

  async function newConversation(userId: number): Promise<string> {
    try {
      const conversation = await client.conversations.create({
        metadata: { telegram_user_id: String(userId) },
      });
      await store.set(keys.conversation(userId), conversation.id);
      return conversation.id;
    } catch (error) {
      throw toAssistantError(error, "creating a conversation");
    }
  }

  async function storedConversation(userId: number): Promise<string | undefined> {
    const id = await store.get(keys.conversation(userId));
    // A `thread_…` id from the Assistants backend (or the Python bot) is not ours.
    return id?.startsWith("conv_") ? id : undefined;
  }

  async function* ask(
    userId: number,
    input: UserInput,
    signal?: AbortSignal,
  ): AsyncGenerator<string, Answer> {
    const content = responseInput(input);
    let conversation = await storedConversation(userId) ?? await newConversation(userId);
    const user = await options.userFields?.(userId);
    const request = async (conversationId: string) => {
      for (let attempt = 1;; attempt++) {
        try {
          return await client.responses.create(
            {
              model,
              instructions,
              conversation: conversationId,
              input: typeof content === "string" ? content : [{ role: "user", content }],
              stream: true,
              // The padding hides token sizes from observers of the wire; between this
              // server and OpenAI (TLS) it only costs bandwidth and parsing.
              stream_options: { include_obfuscation: false },
              ...(compactTokens === undefined ? {} : {
                context_management: [{ type: "compaction", compact_threshold: compactTokens }],
              }),
              ...(maxOutputTokens === undefined ? {} : { max_output_tokens: maxOutputTokens }),
              ...user,
            },
            { signal },
          ).asResponse();
        } catch (error) {
          // A stopped answer may hold the conversation for a moment after its stream
          // closed (a 400 the SDK does not retry): wait it out briefly.
          const locked = error instanceof BadRequestError && error.code === "conversation_locked";
          if (!locked || attempt >= LOCKED_RETRIES || signal?.aborted) throw error;
          await new Promise((r) => setTimeout(r, LOCKED_DELAY_MS * attempt));
        }
      }
    };
    let answer = "";
    let usage: Usage | undefined;
    // Completed only when the stream says so: a stream cut before its end is not.
    let status: Answer["status"] = "incomplete";
    const think = new ThinkFilter();
    try {
      let response;
      try {
        response = await request(conversation);
      } catch (error) {
        // Only a conversation OpenAI no longer knows starts a new one; any other 404 (an
        // unknown model) must not cost the user the conversation they have.
        if (!(error instanceof NotFoundError && isConversationGone(error))) throw error;
        conversation = await newConversation(userId);
        response = await request(conversation);
      }
      for await (const event of responseEvents(response)) {
        // Deltas already buffered still arrive after an abort: stop reading them.
        if (signal?.aborted) break;
        switch (event.type) {
          case "response.output_text.delta": {
            const visible = think.push(event.delta);
            if (visible) {
              answer += visible;
              yield visible;
            }
            break;
          }
          case "response.completed":
          case "response.incomplete":
            status = event.type === "response.completed" ? "completed" : "incomplete";
            if (event.response.usage) {
              usage = {
                inputTokens: event.response.usage.input_tokens,
                outputTokens: event.response.usage.output_tokens,
              };
            }
            break;
          case "response.failed":
            throw failedResponse(event.response.error, contextFix);
        }
      }
    } catch (error) {
      if (error instanceof APIUserAbortError || signal?.aborted) {
        return { text: answer + think.end(), usage, status: "aborted" };
      }
      throw toAssistantError(error, "streaming a response", contextFix);
    }
    const rest = think.end();
    if (rest) {
      answer += rest;
      yield rest;
    }
    return { text: answer, usage, status: signal?.aborted ? "aborted" : status };
  }

  async function history(userId: number, limit?: number): Promise<HistoryMessage[]> {
    const conversation = await storedConversation(userId);
    if (!conversation) return [];
    try {
      // Newest first, so a short history reads only the last page.
      const items = client.conversations.items.list(conversation, {
        order: "desc",
        limit: pageSize(limit),
      });
      return await readBackwards(items, itemToMessage, limit);
    } catch (error) {
      if (error instanceof NotFoundError) return [];
      throw toAssistantError(error, "reading the conversation");
    }
  }

  async function reset(userId: number): Promise<void> {
    await store.delete(keys.conversation(userId));
  }

  return {
    kind: "conversations",
    ask,
    history,
    reset,
    checkServed: () => checkServed(client, "conversations"),
  };
}
