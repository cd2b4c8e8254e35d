/**
 * `OPENAI_API=chat`: Chat Completions, which every OpenAI-compatible server serves.
 *
 * One call per `ask`: `POST /chat/completions` with `stream: true` and
 * `stream_options: { include_usage: true }` (the last chunk carries the usage), the
 * instructions as the first (`system`) message, then the user's stored history and
 * the new message (its images as `image_url` parts, its files as their text: `parts.ts`).
 * Only `delta.content` is answer text: the `reasoning_content` (or
 * `reasoning`) deltas that reasoning servers send are never read, and `<think>` blocks
 * in the content are filtered by the frame (`stateless.ts`), which also handles stops
 * and errors and commits the turn. `finish_reason: "length"` (the output limit) or
 * `"content_filter"` makes the answer `incomplete`.
 */
import type { Assistant } from "./assistant.ts";
import { checkServed } from "./served.ts";
import { chatContent } from "./parts.ts";
import {
  type BackendOptions,
  createStatelessAssistant,
  type Turn,
  type TurnResult,
} from "./stateless.ts";

/** Creates the Chat Completions backend. */
export function createChatCompletionsAssistant(options: BackendOptions): Assistant {
  const { client, model, instructions, maxOutputTokens, official } = options;
  // OpenAI's reasoning models refuse `max_tokens`; other servers all know it.
  const limit = maxOutputTokens === undefined
    ? {}
    : official
    ? { max_completion_tokens: maxOutputTokens }
    : { max_tokens: maxOutputTokens };

  const turn: Turn = async function* ({ userId, past, input, signal }) {
    const user = await options.userFields?.(userId);
    const content = await chatContent(input);
    const stream = await client.chat.completions.create(
      {
        model,
        messages: [
          ...(instructions ? [{ role: "system" as const, content: instructions }] : []),
          ...past.map((m) => ({ role: m.role, content: m.text })),
          { role: "user" as const, content },
        ],
        stream: true,
        stream_options: { include_usage: true },
        ...limit,
        ...user,
      },
      { signal },
    );
    const result: TurnResult = { status: "completed" };
    for await (const chunk of stream) {
      if (signal?.aborted) break;
      const choice = chunk.choices[0];
      if (choice?.delta?.content) yield choice.delta.content;
      if (choice?.finish_reason === "length" || choice?.finish_reason === "content_filter") {
        result.status = "incomplete";
      }
      if (chunk.usage) {
        result.usage = {
          inputTokens: chunk.usage.prompt_tokens,
          outputTokens: chunk.usage.completion_tokens,
        };
      }
    }
    return result;
  };

  return createStatelessAssistant({
    kind: "chat",
    history: options.history,
    log: options.log,
    turn,
    checkServed: () => checkServed(client, "chat"),
  });
}
