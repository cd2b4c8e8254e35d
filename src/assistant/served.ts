/**
 * The start-up check that the endpoint serves the API `OPENAI_API` names, so an
 * operator pointing the bot at a server without Conversations learns it at once, in
 * one line, instead of from every user's first message.
 *
 * One cheap request per start, no tokens spent, no retries:
 *
 * | api             | probe                          | served when                              |
 * | --------------- | ------------------------------ | ---------------------------------------- |
 * | `conversations` | `GET /conversations/conv_probe` | 2xx, or a 404 saying `conv_probe` is not found |
 * | `responses`     | `POST /responses` with `{}`     | anything but 404/405/501 (a 400 for the empty body is the route answering) |
 * | `chat`          | `POST /chat/completions` with `{}` | the same                              |
 *
 * OpenAI answers a route it lacks with 404 `Invalid URL (GET /v1/…)`, and an unknown
 * conversation with 404 "Conversation with id 'conv_probe' not found."; other servers
 * answer a missing route with 404 or 405 and their own text ("404 page not found").
 */
import { APIConnectionError, APIError, AuthenticationError, type OpenAI } from "openai";
import { NotServedError } from "./assistant.ts";
import { toAssistantError } from "./errors.ts";

export type ServedApi = "conversations" | "responses" | "chat";

const PROBE_ID = "conv_probe";

const NAMES: Record<ServedApi, string> = {
  conversations: "the Conversations API",
  responses: "the Responses API",
  chat: "Chat Completions",
};

const FIXES: Record<ServedApi, string> = {
  conversations: "set OPENAI_API=responses or chat",
  responses: "set OPENAI_API=chat",
  chat: "check OPENAI_BASE_URL (an OpenAI-compatible server's URL usually ends in /v1)",
};

/**
 * A 404 that is about the probe's id, not about the route: "Conversation with id
 * 'conv_probe' not found." (OpenAI), rather than "Invalid URL (GET
 * /v1/conversations/conv_probe)" or "Cannot GET /v1/conversations/conv_probe".
 */
function unknownConversation(message: string): boolean {
  return message.includes(PROBE_ID) && /not found|does not exist|no such/i.test(message) &&
    !/invalid url|cannot get/i.test(message);
}

/**
 * Resolves when `api` is served at the client's base URL. Rejects with
 * {@link NotServedError} when the server says it is not (or refuses the key), and with
 * an {@link AssistantError} when it cannot tell (unreachable, 5xx, 429).
 */
export async function checkServed(client: OpenAI, api: ServedApi): Promise<void> {
  const options = { maxRetries: 0, timeout: 15_000 };
  const path = api === "conversations"
    ? `/conversations/${PROBE_ID}`
    : api === "responses"
    ? "/responses"
    : "/chat/completions";
  const probe = `${api === "conversations" ? "GET" : "POST"} ${path}`;
  try {
    if (api === "conversations") await client.get(path, options);
    else await client.post(path, { ...options, body: {} });
    return;
  } catch (error) {
    if (error instanceof AuthenticationError) {
      throw new NotServedError(
        `OpenAI refused OPENAI_API_KEY (${error.status}) at ${client.baseURL}: check the key`,
      );
    }
    if (!(error instanceof APIError) || error instanceof APIConnectionError) {
      throw toAssistantError(error, `checking ${NAMES[api]}`);
    }
    const status = error.status ?? 0;
    if (status >= 500 || status === 429 || status === 408) {
      throw toAssistantError(error, `checking ${NAMES[api]}`);
    }
    const missing = status === 404 || status === 405 || status === 501;
    if (!missing) return; // The route answered: the empty probe was refused, as expected.
    if (api === "conversations" && unknownConversation(error.message)) return;
    throw new NotServedError(
      `OPENAI_API=${api}: ${client.baseURL} does not serve ${NAMES[api]} ` +
        `(${probe} answered ${status}): ${FIXES[api]}`,
    );
  }
}
