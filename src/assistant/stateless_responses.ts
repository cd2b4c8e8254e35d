/**
 * `OPENAI_API=responses`: the Responses API without server-side state, for servers
 * that serve `POST /responses` but no Conversations (OpenRouter, Groq, Ollama,
 * DeepSeek, vLLM, … and OpenAI itself with nothing stored there).
 *
 * One call per `ask`: `POST /responses` with `store: false`, `stream: true`, the
 * instructions as `instructions` and the user's stored history plus the new message
 * as `input` message items (the new one with its images and files as parts:
 * `parts.ts`). The history lives in the bot's store (`history.ts`); the frame
 * (`stateless.ts`) filters reasoning, handles stops and errors, and commits.
 */
import type { Assistant } from "./assistant.ts";
import { failedResponse } from "./errors.ts";
import { checkServed } from "./served.ts";
import { responseInput } from "./parts.ts";
import {
  type BackendOptions,
  createStatelessAssistant,
  HISTORY_CONTEXT_FIX,
  type Turn,
  type TurnResult,
} from "./stateless.ts";
import { responseEvents } from "./sse.ts";

/** Creates the stateless Responses backend. */
export function createStatelessResponsesAssistant(options: BackendOptions): Assistant {
  const { client, model, instructions, maxOutputTokens, official } = options;

  const turn: Turn = async function* ({ userId, past, input, signal }) {
    const user = await options.userFields?.(userId);
    const response = await client.responses.create(
      {
        model,
        instructions,
        input: [
          ...past.map((m) => ({ role: m.role, content: m.text })),
          { role: "user" as const, content: responseInput(input) },
        ],
        store: false,
        stream: true,
        ...(official ? { stream_options: { include_obfuscation: false } } : {}),
        ...user,
        ...(maxOutputTokens === undefined ? {} : { max_output_tokens: maxOutputTokens }),
      },
      { signal },
    ).asResponse();
    // Completed only when the stream says so: a stream cut before its end is not.
    const result: TurnResult = { status: "incomplete" };
    for await (const event of responseEvents(response)) {
      if (signal?.aborted) break;
      switch (event.type) {
        case "response.output_text.delta":
          yield event.delta;
          break;
        case "response.completed":
        case "response.incomplete":
          result.status = event.type === "response.completed" ? "completed" : "incomplete";
          if (event.response.usage) {
            result.usage = {
              inputTokens: event.response.usage.input_tokens,
              outputTokens: event.response.usage.output_tokens,
            };
          }
          break;
        case "response.failed":
          throw failedResponse(event.response.error, HISTORY_CONTEXT_FIX);
      }
    }
    return result;
  };

  return createStatelessAssistant({
    kind: "responses",
    history: options.history,
    log: options.log,
    turn,
    checkServed: () => checkServed(client, "responses"),
  });
}
