/**
 * The fake OpenAI's Chat Completions (`POST /v1/chat/completions`), as the bot's `chat`
 * backend uses it: streamed only, chunks shaped exactly like the `openai@7.57` SDK's
 * `ChatCompletionChunk` and sent the way OpenAI sends them (`data:` lines without an
 * `event:` field, `data: [DONE]` at the end):
 *
 * 1. a first chunk with `delta: { role: "assistant", content: "", refusal: null }`;
 * 2. one chunk per text delta, `delta: { content }`;
 * 3. a last choice chunk with `delta: {}` and `finish_reason` `"stop"`, or `"length"` when
 *    `max_completion_tokens` / `max_tokens` cut the answer;
 * 4. with `stream_options.include_usage`, every chunk carries `usage: null` and a final
 *    chunk with `choices: []` carries the usage.
 *
 * Every chunk has an `obfuscation` padding unless `stream_options.include_obfuscation`
 * is false. Unknown parameters (per `ChatCompletionCreateParamsBase`), wrong types,
 * an empty `messages`, a missing model and over-long `prompt_cache_key` /
 * `safety_identifier` get OpenAI's 400s; an input past `contextWindow` gets
 * `context_length_exceeded`. A user message may carry content parts as the bot sends a
 * photo or a document: `text` and `image_url` (checked in `openai_media.ts`; `vision:
 * false` refuses images). What the bot never sends is not modelled and gets a 400 that
 * says so: non-streamed completions, tools, audio, `input_audio` and `file` parts,
 * content parts in other messages, and messages other than system, user and assistant
 * ones.
 *
 * `reasoning: "field"` makes it act as a compatible server running a reasoning model
 * that separates the reasoning (DeepSeek, vLLM with a reasoning parser): chunks with
 * `delta.reasoning_content` (a field the SDK types lack) come before the answer.
 * `reasoning: "think"` (in `openai.ts`, for every API) writes the reasoning into the
 * answer text as `<think>…</think>`, split across deltas.
 */
import {
  type HttpError,
  invalid,
  isObject,
  optional,
  rejectUnknown,
  requireString,
  wrongType,
} from "./openai.ts";
import { contextLengthExceeded, limitOutput, readUserFields } from "./openai_context.ts";
import { checkChatImage } from "./openai_media.ts";

type Json = Record<string, unknown>;

/** The reasoning a fake reasoning model writes before its answer. */
export const REASONING_DELTAS = ["The user wrote ", "something. ", "Let me think."];

/** The same reasoning inside the answer text, tags split across deltas. */
export const THINK_DELTAS = [
  "<thi",
  `nk>${REASONING_DELTAS[0]}`,
  ...REASONING_DELTAS.slice(1, -1),
  `${REASONING_DELTAS.at(-1)}</th`,
  "ink>\n\n",
];

/** What the chat route uses of the fake server (`FakeOpenAI` builds it). */
export interface FakeModel {
  /** The answer's deltas for the user's text (reasoning included with `reasoning: "think"`). */
  produce(input: string): string[];
  /** Waits before delta `index` (holds, pacing); rejects when `signal` aborts. */
  pace(index: number, signal: AbortSignal): Promise<void>;
  /** Runs `work` in the background; the server's `close()` waits for it. */
  track(work: Promise<unknown>): void;
  /** Aborts when the server closes. */
  closing: AbortSignal;
  /** Counts a stream whose client went away. */
  disconnected(): void;
  /** Tokens a request may hold; Infinity when unlimited. */
  contextWindow: number;
  reasoning?: "think" | "field";
  /** Roughly OpenAI's count. */
  countTokens(text: string): number;
  /** `false`: a model without vision, refusing `image_url` parts. */
  vision: boolean;
}

const CHAT_PARAMS = [
  "audio",
  "frequency_penalty",
  "function_call",
  "functions",
  "logit_bias",
  "logprobs",
  "max_completion_tokens",
  "max_tokens",
  "messages",
  "metadata",
  "modalities",
  "model",
  "moderation",
  "n",
  "parallel_tool_calls",
  "prediction",
  "presence_penalty",
  "prompt_cache_key",
  "prompt_cache_options",
  "prompt_cache_retention",
  "reasoning_effort",
  "response_format",
  "safety_identifier",
  "seed",
  "service_tier",
  "stop",
  "store",
  "stream",
  "stream_options",
  "temperature",
  "tool_choice",
  "tools",
  "top_logprobs",
  "top_p",
  "user",
  "verbosity",
  "web_search_options",
] as const;

/** The keys OpenAI knows on a message of each role the bot sends. */
const MESSAGE_KEYS: Record<string, string[]> = {
  system: ["role", "content", "name"],
  user: ["role", "content", "name"],
  assistant: ["role", "content", "name", "refusal", "tool_calls", "audio", "function_call"],
};
const ROLES = ["developer", "system", "user", "assistant", "tool", "function"];

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const random = (n: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => ALNUM[b % ALNUM.length]).join("");

function notModelled(what: string, param: string): HttpError {
  return invalid(`FakeOpenAI does not model ${what}.`, param, "invalid_value");
}

/** `messages`, checked like OpenAI does, as role and text. */
function readMessages(body: Json, vision: boolean): { role: string; text: string }[] {
  const messages = body.messages;
  if (messages === undefined) {
    throw invalid(
      "Missing required parameter: 'messages'.",
      "messages",
      "missing_required_parameter",
    );
  }
  if (!Array.isArray(messages)) throw wrongType("messages", "an array", messages);
  if (messages.length === 0) {
    throw invalid(
      "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an " +
        "empty array instead.",
      "messages",
      "empty_array",
    );
  }
  return messages.map((raw, i) => {
    const at = `messages[${i}]`;
    if (!isObject(raw)) throw wrongType(at, "an object", raw);
    if (raw.role === undefined) {
      throw invalid(
        `Missing required parameter: '${at}.role'.`,
        `${at}.role`,
        "missing_required_parameter",
      );
    }
    if (typeof raw.role !== "string" || !ROLES.includes(raw.role)) {
      throw invalid(
        `Invalid value: '${String(raw.role)}'. Supported values are: 'developer', 'system', ` +
          `'user', 'assistant', 'tool', and 'function'.`,
        `${at}.role`,
        "invalid_value",
      );
    }
    const keys = MESSAGE_KEYS[raw.role];
    if (!keys) throw notModelled(`messages of role '${raw.role}'`, `${at}.role`);
    rejectUnknown(raw, keys, `${at}.`);
    const extra = Object.keys(raw).find((key) => key !== "role" && key !== "content");
    if (extra) throw notModelled(`'${extra}' in messages`, `${at}.${extra}`);
    const content = raw.content;
    if (content === undefined || content === null) {
      throw invalid(
        `Missing required parameter: '${at}.content'.`,
        `${at}.content`,
        "missing_required_parameter",
      );
    }
    if (Array.isArray(content)) {
      if (raw.role !== "user") throw notModelled("content parts", `${at}.content`);
      return { role: raw.role, text: userParts(content, at, vision) };
    }
    if (typeof content !== "string") {
      throw wrongType(`${at}.content`, "a string or an array", content);
    }
    return { role: raw.role, text: content };
  });
}

/**
 * The text of a user message's content parts, as the bot sends a photo or a document:
 * `text` parts and `image_url` parts (checked in `openai_media.ts`). The other parts
 * OpenAI takes (`input_audio`, `file`) are not modelled.
 */
function userParts(parts: unknown[], at: string, vision: boolean): string {
  return parts.map((part, j) => {
    const where = `${at}.content[${j}]`;
    if (!isObject(part)) throw wrongType(where, "an object", part);
    if (part.type === "image_url") {
      checkChatImage(part, where, vision);
      return "";
    }
    if (part.type === "input_audio" || part.type === "file") {
      throw notModelled(`'${part.type}' parts`, `${where}.type`);
    }
    if (part.type !== "text") {
      throw invalid(
        `Invalid value: '${String(part.type)}'. Supported values are: 'text', 'image_url', ` +
          "'input_audio', and 'file'.",
        `${where}.type`,
        "invalid_value",
      );
    }
    rejectUnknown(part, ["type", "text", "prompt_cache_breakpoint"], `${where}.`);
    if (part.prompt_cache_breakpoint !== undefined) {
      throw notModelled("'prompt_cache_breakpoint'", `${where}.prompt_cache_breakpoint`);
    }
    if (typeof part.text !== "string") throw wrongType(`${where}.text`, "a string", part.text);
    return part.text;
  }).join("");
}

/** A positive integer parameter, or undefined. */
function readLimit(body: Json, name: string): number | undefined {
  const value = optional(body, name, "number");
  if (value === undefined) return undefined;
  if (!Number.isInteger(value)) throw wrongType(name, "an integer", value);
  if (value < 1) {
    throw invalid(
      `Invalid '${name}': integer below minimum value. Expected a value >= 1, but got ${value} ` +
        `instead.`,
      name,
      "integer_below_min_value",
    );
  }
  return value;
}

function readStreamOptions(body: Json) {
  const options = body.stream_options;
  if (options === undefined || options === null) return {};
  if (!isObject(options)) throw wrongType("stream_options", "an object", options);
  rejectUnknown(options, ["include_usage", "include_obfuscation"], "stream_options.");
  return {
    includeUsage: optional(options, "include_usage", "boolean", "stream_options."),
    includeObfuscation: optional(options, "include_obfuscation", "boolean", "stream_options."),
  };
}

const encoder = new TextEncoder();

/**
 * Answers one `POST /v1/chat/completions`. Throws {@link HttpError} for a request
 * OpenAI would refuse; the server turns it into the error response.
 */
export function createChatCompletion(body: Json, fake: FakeModel): Response {
  rejectUnknown(body, CHAT_PARAMS);
  if (body.model === undefined) throw invalid("you must provide a model parameter");
  const model = requireString(body, "model");
  const messages = readMessages(body, fake.vision);
  const stream = optional(body, "stream", "boolean") ?? false;
  const { includeUsage, includeObfuscation } = readStreamOptions(body);
  const maxTokens = readLimit(body, "max_completion_tokens") ?? readLimit(body, "max_tokens");
  // OpenAI's reasoning models refuse the old name (why the bot sends the new one to OpenAI).
  if (body.max_tokens !== undefined && /^(o\d|gpt-5)/.test(model)) {
    throw invalid(
      "Unsupported parameter: 'max_tokens' is not supported with this model. Use " +
        "'max_completion_tokens' instead.",
      "max_tokens",
      "unsupported_parameter",
    );
  }
  readUserFields(body);
  for (const name of ["tools", "functions", "audio", "n", "response_format"]) {
    if (body[name] !== undefined && body[name] !== null) throw notModelled(`'${name}'`, name);
  }
  if (!stream) throw notModelled("non-streamed chat completions (set stream: true)", "stream");

  const inputTokens = fake.countTokens(messages.map((m) => m.text).join(""));
  if (inputTokens > fake.contextWindow) {
    throw contextLengthExceeded("chat", fake.contextWindow, inputTokens);
  }
  const lastUser = messages.findLast((m) => m.role === "user")?.text ?? "";
  const { deltas, cut } = limitOutput(fake.produce(lastUser), maxTokens, fake.countTokens);
  const reasoning = fake.reasoning === "field" ? REASONING_DELTAS : [];

  const id = `chatcmpl-${random(29)}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (choices: unknown[], usage: unknown = null) => ({
    id,
    object: "chat.completion.chunk",
    created,
    model,
    service_tier: "default",
    system_fingerprint: "fp_fake000000",
    choices,
    ...(includeUsage ? { usage } : {}),
    ...(includeObfuscation === false ? {} : { obfuscation: random(8) }),
  });
  const choice = (delta: Json, finish: string | null = null) => ({
    index: 0,
    delta,
    logprobs: null,
    finish_reason: finish,
  });

  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const gone = new AbortController();
  const body$ = new ReadableStream<Uint8Array>({
    start: (c) => void (controller = c),
    cancel: () => {
      open = false;
      fake.disconnected();
      gone.abort(new Error("client disconnected"));
    },
  });
  const send = (data: unknown) => {
    if (open) controller.enqueue(encoder.encode(`data: ${JSON.stringify(data)}\n\n`));
  };
  const signal = AbortSignal.any([gone.signal, fake.closing]);

  fake.track((async () => {
    try {
      send(chunk([choice({ role: "assistant", content: "", refusal: null })]));
      for (const [index, delta] of reasoning.entries()) {
        await fake.pace(index, signal);
        send(chunk([choice({ content: null, reasoning_content: delta })]));
      }
      let text = "";
      for (const [index, delta] of deltas.entries()) {
        await fake.pace(reasoning.length + index, signal);
        text += delta;
        send(chunk([choice({ content: delta })]));
      }
      send(chunk([choice({}, cut ? "length" : "stop")]));
      if (includeUsage) {
        const reasoningTokens = fake.countTokens(reasoning.join(""));
        const completion = fake.countTokens(text) + reasoningTokens;
        send(chunk([], {
          prompt_tokens: inputTokens,
          completion_tokens: completion,
          total_tokens: inputTokens + completion,
          prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
          completion_tokens_details: {
            reasoning_tokens: reasoningTokens,
            audio_tokens: 0,
            accepted_prediction_tokens: 0,
            rejected_prediction_tokens: 0,
          },
        }));
      }
      if (open) controller.enqueue(encoder.encode("data: [DONE]\n\n"));
    } catch {
      // The client went away or the server is closing: end the stream.
    } finally {
      if (open) {
        open = false;
        controller.close();
      }
    }
  })());

  return new Response(body$, {
    headers: {
      "x-request-id": `req_${random(32)}`,
      "openai-processing-ms": "1",
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    },
  });
}
