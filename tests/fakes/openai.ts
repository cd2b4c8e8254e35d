/**
 * A fake OpenAI server for end-to-end tests, over real HTTP on 127.0.0.1, shaped on the
 * `openai@7.57` SDK's type definitions and on OpenAI's observed behaviour, so that the
 * bot's real `OpenAI` client talks to it unchanged (`baseURL`, `apiKey`).
 *
 * Scope: exactly the endpoints the bot calls.
 * - Responses and Conversations: `POST /v1/conversations` (metadata),
 *   `POST /v1/responses` streamed, either with `conversation` or stateless (`store:
 *   false`), `input` a string or an array of messages: assistant messages with string
 *   content (the stateless history), user messages with string content or content
 *   parts (`input_text`, and the `input_image` / `input_file` of a photo or document,
 *   checked in `openai_media.ts`), `GET /v1/conversations/{id}/items` (`order`,
 *   `limit`, `after`), and `GET /v1/conversations/{id}` (the start-up check asks for
 *   `conv_probe`).
 * - Chat Completions (`POST /v1/chat/completions`, streamed): see `openai_chat.ts`.
 * - Speech to text (`POST /v1/audio/transcriptions`, multipart): see `openai_media.ts`.
 * - Legacy Assistants (threads and runs): `POST /v1/threads` (metadata),
 *   `POST` and `GET /v1/threads/{id}/messages` (text content; `order`, `limit`,
 *   `after`), `POST /v1/threads/{id}/runs` streamed, `GET /v1/threads/{id}/runs/{id}`
 *   and `POST /v1/threads/{id}/runs/{id}/cancel`.
 * Any other path is OpenAI's 404 "Invalid URL". Parameters OpenAI accepts but the bot
 * never sends (non-streamed answers and runs, stored responses without a conversation,
 * assistant content parts, other input items, content parts and roles, `previous_response_id`, items or
 * messages at creation, `tool_resources`, `additional_messages`, attachments, the
 * `before` cursor, `run_id`) are refused with a 400 "FakeOpenAI does not model …".
 * For tests: `reply` makes the answer, `hold()` pauses streams, `failNext` injects
 * OpenAI's errors, `timeToFirstTokenMs` and `tokensPerSecond` pace deltas, and
 * `requests` (each with the status and error it was answered with), `aborted`,
 * `conversationItems()` record.
 *
 * It is strict where OpenAI is strict: unknown body parameters, wrong types, bad id
 * prefixes, missing headers, concurrent work on one conversation or thread and
 * out-of-range pagination are rejected with OpenAI's status codes and error bodies.
 *
 * Choices where OpenAI's behaviour is not documented (each one says why):
 * - A streamed response whose client disconnects is stopped, counted in `aborted`,
 *   and adds nothing to its conversation: neither the input nor the partial output.
 *   Users of the real API report exactly that for a conversation after an aborted
 *   stream (openai/openai-node#2571, openai/openai-python#3561), which also means input
 *   and output items are appended together when the response completes, never earlier.
 * - A legacy run whose stream disconnects keeps running (a run is a server-side job
 *   that the stream only watches) and still adds its message; it is counted in
 *   `aborted`. `POST /threads/{id}/runs/{id}/cancel` stops it: the partial message
 *   is kept with status `incomplete` and the run ends `cancelled`.
 * - `conversation_locked` carries the message OpenAI sends ("... Please retry in a
 *   few seconds.", param `conversation`), as seen in logs of the real API.
 * - Unknown pagination cursors (`after`) get 404 naming the item.
 * - Text deltas carry `obfuscation` padding, as OpenAI sends by default, unless
 *   `stream_options.include_obfuscation` is false.
 *
 * Chat Completions live in `openai_chat.ts`; the context window, compaction and the
 * per-user fields in `openai_context.ts`; transcriptions and the checks of images and
 * files in `openai_media.ts`. Options make it act as a compatible server: `lacks` (no
 * Conversations, say), `reasoning` (a reasoning model's `<think>` text or
 * `reasoning_content` deltas), `vision: false` (a model without vision).
 */
import type OpenAI from "openai";
import { createChatCompletion, type FakeModel, THINK_DELTAS } from "./openai_chat.ts";
import {
  type CompactionItem,
  compactionItem,
  contextLengthExceeded,
  limitOutput,
  readCompactThreshold,
  readUserFields,
  renderedItems,
} from "./openai_context.ts";
import { checkInputFile, checkInputImage, FakeAudio } from "./openai_media.ts";

/** Options of {@link FakeOpenAI.start}. */
export interface FakeOpenAIOptions {
  /** Delay between the opening events of a stream and its first text delta; default 0. */
  timeToFirstTokenMs?: number;
  /** Deltas per second after the first one; default 0 = no pacing. */
  tokensPerSecond?: number;
  /** `asst_…` ids served by the legacy Assistants API; default ["asst_test"]. */
  assistants?: string[];
  /** Tokens a request may hold (see `openai_context.ts`); default unlimited. */
  contextWindow?: number;
  /** APIs answered like a route the server lacks (404 Invalid URL), as compatible servers do. */
  lacks?: ("conversations" | "responses" | "chat")[];
  /** Act as a reasoning model: `<think>` in the text, or `reasoning_content` chat deltas. */
  reasoning?: "think" | "field";
  /** `false`: a model without vision, refusing images and files (`openai_media.ts`). */
  vision?: boolean;
}

/** One request as the fake received it. */
export interface RecordedRequest {
  method: string;
  /** The URL path without the query, e.g. "/v1/responses". */
  path: string;
  /** The query string without "?", "" when none. */
  query: string;
  /** The parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  body: unknown;
  /** `Date.now()` when it arrived. */
  at: number;
  /** The HTTP status it was answered with (200 for a stream); unset while in progress. */
  status?: number;
  /** OpenAI's error body, when it was refused. */
  error?: OpenAIErrorBody;
}

/** A hold on streaming answers, from {@link FakeOpenAI.hold}. */
export interface Hold {
  /** Lets held streams go on; calling it again does nothing. */
  release(): void;
  /** Resolves once a stream is waiting on this hold (at once if one already is). */
  readonly waiting: Promise<void>;
}

/** OpenAI's error body. */
export interface OpenAIErrorBody {
  message: string;
  type: string;
  param: string | null;
  code: string | number | null;
}

type WireResponse =
  & Omit<OpenAI.Responses.Response, "output_text" | "usage">
  // OpenAI sends `usage: null` until completion, and `store`, which the SDK type lacks.
  & { usage: OpenAI.Responses.ResponseUsage | null; store: boolean };
type OutputMessage = OpenAI.Responses.ResponseOutputMessage;
type OutputText = OpenAI.Responses.ResponseOutputText;
type ConversationMessage = OpenAI.Conversations.Message;
type ThreadMessage = OpenAI.Beta.Threads.Message;
type Run = OpenAI.Beta.Threads.Run;
type RunStep = OpenAI.Beta.Threads.Runs.RunStep;
type Thread = OpenAI.Beta.Threads.Thread;
type Json = Record<string, unknown>;

/** The only key accepted in `Authorization: Bearer …`. */
const API_KEY = "sk-test-fake-key-0123456789";

/** An error answer; thrown by handlers and turned into a response by the router. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: OpenAIErrorBody,
    readonly headers: Record<string, string> = {},
  ) {
    super(error.message);
  }
}

export function invalid(
  message: string,
  param: string | null = null,
  code: string | null = null,
  status = 400,
): HttpError {
  return new HttpError(status, { message, type: "invalid_request_error", param, code });
}

/** A parameter OpenAI accepts that the bot never sends: refused, so a change shows. */
export function notModelled(what: string, param: string | null = null): HttpError {
  return invalid(`FakeOpenAI does not model ${what}.`, param, "not_modelled");
}

function invalidUrl(method: string, path: string): HttpError {
  return invalid(`Invalid URL (${method} ${path})`, null, null, 404);
}

/** OpenAI's error for a failure injected with `failNext`. */
function injectedError(
  status: number,
  retryAfterSeconds: number,
  override?: Partial<OpenAIErrorBody>,
) {
  const known: Record<number, OpenAIErrorBody> = {
    429: {
      message: "Rate limit reached for requests",
      type: "requests",
      param: null,
      code: "rate_limit_exceeded",
    },
    500: {
      message: "The server had an error while processing your request. Sorry about that!",
      type: "server_error",
      param: null,
      code: null,
    },
  };
  const base = known[status] ?? {
    message: `Injected failure (${status}).`,
    type: status >= 500 ? "server_error" : "invalid_request_error",
    param: null,
    code: null,
  };
  const headers: Record<string, string> = status === 429
    ? {
      "retry-after": String(retryAfterSeconds),
      "x-ratelimit-limit-requests": "500",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": `${retryAfterSeconds}s`,
    }
    : {};
  return new HttpError(status, { ...base, ...override }, headers);
}

// ---------------------------------------------------------------------------
// Small helpers

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomAlnum(n: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(bytes, (b) => ALNUM[b % ALNUM.length]).join("");
}

function randomHex(n: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(n / 2)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, n);
}

/** Ids look like OpenAI's: 48 hex for Responses/Conversations, 24 base62 for Assistants. */
const newId = {
  conversation: () => `conv_${randomHex(48)}`,
  response: () => `resp_${randomHex(48)}`,
  item: () => `msg_${randomHex(48)}`,
  thread: () => `thread_${randomAlnum(24)}`,
  threadMessage: () => `msg_${randomAlnum(24)}`,
  run: () => `run_${randomAlnum(24)}`,
  step: () => `step_${randomAlnum(24)}`,
  request: () => `req_${randomHex(32)}`,
};

const now = () => Math.floor(Date.now() / 1000);

/** Roughly OpenAI's count: a token is about four characters. */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

/** Splits a reply into word-sized deltas that keep their leading whitespace, like a model's. */
function toDeltas(reply: string | string[]): string[] {
  if (Array.isArray(reply)) return reply.map(String);
  return reply.match(/\s*\S+|\s+$/g) ?? [];
}

export function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** OpenAI's wording for a JSON value's type in "Invalid type" errors. */
function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return Number.isInteger(value) ? "an integer" : "a decimal";
  if (typeof value === "string") return "a string";
  if (typeof value === "boolean") return "a boolean";
  return "an object";
}

export function wrongType(param: string, expected: string, value: unknown): HttpError {
  return invalid(
    `Invalid type for '${param}': expected ${expected}, but got ${typeName(value)} instead.`,
    param,
    "invalid_type",
  );
}

/** Rejects the first key not in `allowed`; `at` prefixes nested names ("stream_options."). */
export function rejectUnknown(body: Json, allowed: readonly string[], at = ""): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      throw invalid(`Unknown parameter: '${at}${key}'.`, `${at}${key}`, "unknown_parameter");
    }
  }
}

interface Kinds {
  string: string;
  number: number;
  boolean: boolean;
}

/** `body[key]` of this JSON type; undefined when absent or null. */
export function optional<K extends keyof Kinds>(
  body: Json,
  key: string,
  kind: K,
  at = "",
): Kinds[K] | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  const type: string = typeof value;
  if (type !== kind) throw wrongType(`${at}${key}`, `a ${kind}`, value);
  return value as Kinds[K];
}

export function requireString(body: Json, key: string): string {
  const value = body[key];
  if (value === undefined) {
    throw invalid(`Missing required parameter: '${key}'.`, key, "missing_required_parameter");
  }
  if (typeof value !== "string") throw wrongType(key, "a string", value);
  return value;
}

/** A missing object of the Assistants API, in its words. */
function noSuch(kind: "assistant" | "thread" | "message" | "run", id: string): HttpError {
  return invalid(`No ${kind} found with id '${id}'.`, null, null, 404);
}

/** `stream_options` of a response: an object whose only field is a boolean. */
function readStreamOptions(body: Json): { include_obfuscation?: boolean } {
  const options = body.stream_options;
  if (options === undefined || options === null) return {};
  if (!isObject(options)) throw wrongType("stream_options", "an object", options);
  rejectUnknown(options, ["include_obfuscation"], "stream_options.");
  return {
    include_obfuscation: optional(options, "include_obfuscation", "boolean", "stream_options."),
  };
}

/** Metadata as OpenAI checks it: at most 16 string values, keys ≤ 64, values ≤ 512 chars. */
function readMetadata(body: Json, key = "metadata"): Record<string, string> | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw wrongType(key, "an object", value);
  const entries = Object.entries(value);
  if (entries.length > 16) {
    throw invalid(
      `Invalid '${key}': too many properties. Expected an object with at most 16 properties, ` +
        `but got an object with ${entries.length} properties instead.`,
      key,
      "object_above_max_properties",
    );
  }
  for (const [k, v] of entries) {
    if (k.length > 64) {
      throw invalid(
        `Invalid '${key}': string too long. Expected a string with maximum length 64, ` +
          `but got a string with length ${k.length} instead.`,
        key,
        "string_above_max_length",
      );
    }
    if (typeof v !== "string") throw wrongType(`${key}.${k}`, "a string", v);
    if (v.length > 512) {
      throw invalid(
        `Invalid '${key}.${k}': string too long. Expected a string with maximum length 512, ` +
          `but got a string with length ${v.length} instead.`,
        `${key}.${k}`,
        "string_above_max_length",
      );
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function checkPrefix(id: string, prefix: string, param: string): void {
  if (!id.startsWith(`${prefix}_`)) {
    throw invalid(
      `Invalid '${param}': '${id}'. Expected an ID that begins with '${prefix}'.`,
      param,
      "invalid_value",
    );
  }
}

/** `limit`, `order`, `after` of a list endpoint, checked like OpenAI does. */
interface ListQuery {
  limit: number;
  order: "asc" | "desc";
  after?: string;
}

function readListQuery(query: URLSearchParams): ListQuery {
  const rawLimit = query.get("limit");
  let limit = 20;
  if (rawLimit !== null) {
    if (!/^-?\d+$/.test(rawLimit)) {
      throw invalid(
        `Invalid type for 'limit': expected an integer, but got a string instead.`,
        "limit",
        "invalid_type",
      );
    }
    limit = Number(rawLimit);
    if (limit < 1) {
      throw invalid(
        `Invalid 'limit': integer below minimum value. Expected a value >= 1, but got ${limit} ` +
          `instead.`,
        "limit",
        "integer_below_min_value",
      );
    }
    if (limit > 100) {
      throw invalid(
        `Invalid 'limit': integer above maximum value. Expected a value <= 100, but got ${limit} ` +
          `instead.`,
        "limit",
        "integer_above_max_value",
      );
    }
  }
  const order = query.get("order") ?? "desc";
  if (order !== "asc" && order !== "desc") {
    throw invalid(
      `Invalid value: '${order}'. Supported values are: 'asc' and 'desc'.`,
      "order",
      "invalid_value",
    );
  }
  if (query.has("before")) throw notModelled("before");
  return { limit, order, after: query.get("after") ?? undefined };
}

/** One page of `all` (oldest first) in OpenAI's list shape, for this query string. */
function page<T extends { id: string }>(
  all: readonly T[],
  query: URLSearchParams,
  notFound: (id: string) => HttpError,
): Response {
  const q = readListQuery(query);
  const ordered = q.order === "asc" ? [...all] : [...all].reverse();
  let rest = ordered;
  if (q.after !== undefined) {
    const at = ordered.findIndex((x) => x.id === q.after);
    if (at < 0) throw notFound(q.after);
    rest = ordered.slice(at + 1);
  }
  const items = rest.slice(0, q.limit);
  const hasMore = rest.length > q.limit;
  return json({
    object: "list",
    data: structuredClone(items),
    first_id: items[0]?.id ?? null,
    last_id: items.at(-1)?.id ?? null,
    has_more: hasMore,
  });
}

/** Waits `ms`, or rejects as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

const encoder = new TextEncoder();

/**
 * The body of one SSE answer. `disconnected` aborts when the client goes away before
 * `close()` (Deno cancels the body stream at once, also when nothing is being written;
 * a closed stream is never cancelled).
 */
class SseSink {
  readonly body: ReadableStream<Uint8Array>;
  readonly disconnected: AbortSignal;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #open = true;
  #sequence = 0;

  constructor(onDisconnect: () => void) {
    const gone = new AbortController();
    this.disconnected = gone.signal;
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => {
        this.#open = false;
        onDisconnect();
        gone.abort(new Error("client disconnected"));
      },
    });
  }

  /** The next `sequence_number` of the Responses API's events. */
  nextSequence(): number {
    return this.#sequence++;
  }

  send(event: string, data: unknown): void {
    this.#write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** The Assistants API's terminator: `event: done` / `data: [DONE]`. */
  done(): void {
    this.#write("event: done\ndata: [DONE]\n\n");
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#controller.close();
  }

  #write(text: string): void {
    if (this.#open) this.#controller.enqueue(encoder.encode(text));
  }
}

// ---------------------------------------------------------------------------
// State

interface ConversationState {
  conversation: OpenAI.Conversations.Conversation;
  items: (ConversationMessage | CompactionItem)[];
  /** The response currently operating on it. */
  lockedBy?: string;
}

interface RunState {
  run: Run;
  /** Aborted by `runs.cancel`. */
  cancel: AbortController;
}

interface ThreadState {
  thread: Thread;
  messages: ThreadMessage[];
  runs: RunState[];
}

/** The instructions of every assistant the fake serves. */
const ASSISTANT_INSTRUCTIONS = "You are a helpful assistant.";

const ACTIVE_RUN = new Set<Run["status"]>([
  "queued",
  "in_progress",
  "requires_action",
  "cancelling",
]);

/** The body parameters `responses.create` accepts. */
const RESPONSE_PARAMS = (
  "access_programs background context_management conversation image include input " +
  "instructions max_output_tokens max_tool_calls metadata model moderation " +
  "parallel_tool_calls previous_response_id prompt prompt_cache_key " +
  "prompt_cache_options prompt_cache_retention reasoning safety_identifier service_tier " +
  "store stream stream_options temperature text tool_choice tools top_logprobs top_p " +
  "truncation user"
).split(" ");

/** The body parameters `threads.runs.create` accepts. */
const RUN_PARAMS = (
  "assistant_id additional_instructions additional_messages instructions " +
  "max_completion_tokens max_prompt_tokens metadata model parallel_tool_calls " +
  "reasoning_effort response_format stream temperature tool_choice tools top_p " +
  "truncation_strategy"
).split(" ");

interface Context {
  /** The body's bytes (a multipart upload is not parsed as JSON). */
  raw: Uint8Array;
  method: string;
  path: string;
  query: URLSearchParams;
  body: Json;
  headers: Headers;
  match: string[];
}

type Handler = (ctx: Context) => Promise<Response> | Response;

// ---------------------------------------------------------------------------
// The server

/** The fake server; see the module comment for what it models. */
export class FakeOpenAI {
  /** "http://127.0.0.1:PORT/v1", for `new OpenAI({ baseURL })`. */
  readonly baseURL: string;
  readonly apiKey = API_KEY;
  /** How an answer is produced from the user's text; a string is split into word deltas. */
  reply: (input: string) => string | string[] = (input) => `Echo: ${input}`;
  /** Every request received, in order, including rejected ones. */
  readonly requests: RecordedRequest[] = [];
  /** Speech to text (`POST /v1/audio/transcriptions`, `openai_media.ts`). */
  readonly audio: FakeAudio = new FakeAudio();

  #server: Deno.HttpServer<Deno.NetAddr>;
  #options: Required<Omit<FakeOpenAIOptions, "reasoning">> & FakeOpenAIOptions;
  #closing = new AbortController();
  #tasks = new Set<Promise<unknown>>();
  #aborted = 0;
  #failures: {
    path: string | RegExp;
    status: number;
    times: number;
    retryAfterSeconds: number;
    error?: Partial<OpenAIErrorBody>;
  }[] = [];
  #holds = new Set<{ reached: () => void }>();
  #holdWaiters = new Set<() => void>();
  #conversations = new Map<string, ConversationState>();
  #threads = new Map<string, ThreadState>();
  #routes: [string, RegExp, Handler][];

  private constructor(options: FakeOpenAIOptions, server: Deno.HttpServer<Deno.NetAddr>) {
    this.#server = server;
    this.baseURL = `http://127.0.0.1:${server.addr.port}/v1`;
    this.#options = {
      timeToFirstTokenMs: options.timeToFirstTokenMs ?? 0,
      tokensPerSecond: options.tokensPerSecond ?? 0,
      assistants: options.assistants ?? ["asst_test"],
      contextWindow: options.contextWindow ?? Infinity,
      lacks: options.lacks ?? [],
      reasoning: options.reasoning,
      vision: options.vision ?? true,
    };
    const id = "([^/]+)";
    this.#routes = [
      ["POST", /^\/v1\/responses$/, (c) => this.#createResponse(c)],
      ["POST", /^\/v1\/chat\/completions$/, (c) => createChatCompletion(c.body, this.#model())],
      ["POST", /^\/v1\/audio\/transcriptions$/, (c) => this.audio.transcribe(c.raw, c.headers)],
      ["POST", /^\/v1\/conversations$/, (c) => this.#createConversation(c)],
      ["GET", new RegExp(`^/v1/conversations/${id}$`), (c) => this.#getConversation(c)],
      ["GET", new RegExp(`^/v1/conversations/${id}/items$`), (c) => this.#listItems(c)],
      ["POST", /^\/v1\/threads$/, (c) => this.#createThread(c)],
      ["POST", new RegExp(`^/v1/threads/${id}/messages$`), (c) => this.#createMessage(c)],
      ["GET", new RegExp(`^/v1/threads/${id}/messages$`), (c) => this.#listMessages(c)],
      ["POST", new RegExp(`^/v1/threads/${id}/runs$`), (c) => this.#createRun(c)],
      ["GET", new RegExp(`^/v1/threads/${id}/runs/${id}$`), (c) => this.#getRun(c)],
      ["POST", new RegExp(`^/v1/threads/${id}/runs/${id}/cancel$`), (c) => this.#cancelRun(c)],
    ];
  }

  /** Starts a server on 127.0.0.1 with a free port. */
  static start(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
    const ready = Promise.withResolvers<FakeOpenAI>();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (request) => (await ready.promise).#handle(request),
    );
    const fake = new FakeOpenAI(options, server);
    ready.resolve(fake);
    return Promise.resolve(fake);
  }

  /** Streamed answers whose client disconnected before the end. */
  get aborted(): number {
    return this.#aborted;
  }

  /**
   * The next `times` requests whose path matches (a string: the exact path, e.g.
   * "/v1/responses"; a RegExp: tested on the path) fail with `status` and OpenAI's
   * body for it. Checked after authentication, before anything else.
   */
  failNext(
    path: string | RegExp,
    status: number,
    times = 1,
    opts: { retryAfterSeconds?: number; error?: Partial<OpenAIErrorBody> } = {},
  ): void {
    this.#failures.push({
      path,
      status,
      times,
      retryAfterSeconds: opts.retryAfterSeconds ?? 1,
      error: opts.error,
    });
  }

  /**
   * While any hold is unreleased, streamed responses and all runs pause before their
   * next text delta: a new stream sends its opening events (through
   * `response.content_part.added` / `thread.message.in_progress`) and waits.
   * Non-streamed responses are not held.
   */
  hold(): Hold {
    let reached!: () => void;
    const waiting = new Promise<void>((resolve) => (reached = resolve));
    const entry = { reached };
    this.#holds.add(entry);
    if (this.#holdWaiters.size > 0) reached();
    return {
      waiting,
      release: () => {
        if (!this.#holds.delete(entry)) return;
        if (this.#holds.size === 0) {
          for (const wake of this.#holdWaiters) wake();
          this.#holdWaiters.clear();
        }
      },
    };
  }

  /** The items of a conversation, oldest first (copies); [] when unknown. */
  conversationItems(id: string): unknown[] {
    return structuredClone(this.#conversations.get(id)?.items ?? []);
  }

  /** Ends held and paced streams, waits for them, and stops the server. */
  async close(): Promise<void> {
    this.#closing.abort(new Error("fake server closed"));
    for (const wake of this.#holdWaiters) wake();
    this.#holdWaiters.clear();
    await Promise.allSettled([...this.#tasks]);
    await this.#server.shutdown();
  }

  // -------------------------------------------------------------------------
  // Plumbing

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname;
    const raw = new Uint8Array(await request.arrayBuffer());
    const multipart = /^multipart\/form-data/i.test(request.headers.get("content-type") ?? "");
    const text = multipart ? "" : new TextDecoder().decode(raw);
    let parsed: unknown = multipart ? new TextDecoder("latin1").decode(raw) : undefined;
    let parseFailed = false;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
        parseFailed = true;
      }
    }
    const record: RecordedRequest = {
      method: request.method,
      path,
      query: url.search.slice(1),
      body: parsed,
      at: Date.now(),
    };
    this.requests.push(record);
    try {
      this.#authenticate(request.headers);
      this.#injectFailure(path);
      const route = this.#route(request.method, path);
      if (!route) throw invalidUrl(request.method, path);
      const [handler, match] = route;
      if (/^\/v1\/(assistants|threads)(\/|$)/.test(path)) this.#checkBeta(request.headers);
      if (parseFailed) {
        throw invalid(
          "We could not parse the JSON body of your request. (HINT: This likely means you aren't " +
            "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what " +
            "was sent was not valid JSON. If you have trouble figuring out how to fix this, " +
            "please contact us through our help center at help.openai.com.)",
        );
      }
      if (parsed !== undefined && !multipart && !isObject(parsed)) {
        throw wrongType("body", "an object", parsed);
      }
      const response = await handler({
        raw,
        method: request.method,
        path,
        query: url.searchParams,
        body: multipart ? {} : (parsed as Json | undefined) ?? {},
        headers: request.headers,
        match,
      });
      record.status = response.status;
      return response;
    } catch (error) {
      if (!(error instanceof HttpError)) console.error("FakeOpenAI: handler failed", error);
      const refusal = error instanceof HttpError ? error : injectedError(500, 0);
      record.status = refusal.status;
      record.error = refusal.error;
      return errorResponse(refusal);
    }
  }

  #route(method: string, path: string): [Handler, string[]] | undefined {
    const api = path.match(/^\/v1\/(conversations|responses|chat)(\/|$)/)?.[1];
    if (this.#options.lacks.some((lacking) => lacking === api)) return undefined;
    for (const [m, pattern, handler] of this.#routes) {
      const match = pattern.exec(path);
      if (match && m === method) return [handler, match.slice(1).map(decodeURIComponent)];
    }
    return undefined;
  }

  #authenticate(headers: Headers): void {
    const auth = headers.get("authorization");
    const key = auth?.match(/^Bearer\s+(.*)$/i)?.[1]?.trim();
    if (!key) {
      throw new HttpError(401, {
        message: "You didn't provide an API key. You need to provide your API key in an " +
          "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as " +
          "the password field (with blank username) if you're accessing the API from your " +
          "browser and are prompted for a username. You can obtain an API key from " +
          "https://platform.openai.com/account/api-keys.",
        type: "invalid_request_error",
        param: null,
        code: null,
      });
    }
    if (key !== this.apiKey) {
      const masked = key.length > 10
        ? `${key.slice(0, 6)}${"*".repeat(key.length - 10)}${key.slice(-4)}`
        : "*".repeat(key.length);
      throw new HttpError(401, {
        message: `Incorrect API key provided: ${masked}. You can find your API key at ` +
          "https://platform.openai.com/account/api-keys.",
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      });
    }
  }

  #injectFailure(path: string): void {
    const failure = this.#failures.find((f) =>
      typeof f.path === "string" ? f.path === path : f.path.test(path)
    );
    if (!failure) return;
    failure.times--;
    if (failure.times <= 0) this.#failures.splice(this.#failures.indexOf(failure), 1);
    throw injectedError(failure.status, failure.retryAfterSeconds, failure.error);
  }

  #checkBeta(headers: Headers): void {
    const beta = headers.get("openai-beta") ?? "";
    if (/assistants=v2/.test(beta)) return;
    if (/assistants=v1/.test(beta)) {
      throw invalid(
        "The v1 Assistants API has been deprecated. Please try again by setting the header " +
          "'OpenAI-Beta: assistants=v2'. See the migration guide for more information: " +
          "https://platform.openai.com/docs/assistants/migration.",
        null,
        "invalid_beta",
      );
    }
    throw invalid(
      "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try " +
        "again by setting the header 'OpenAI-Beta: assistants=v2'.",
      null,
      "invalid_beta",
    );
  }

  /** Runs `work` in the background; `close()` waits for it. */
  #track(work: Promise<unknown>): void {
    const task = work.catch((error) => console.error("FakeOpenAI: task failed", error));
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  /** Waits while a hold is active; rejects when `signal` aborts. */
  #waitForHolds(signal: AbortSignal): Promise<void> {
    if (this.#holds.size === 0) return Promise.resolve();
    if (signal.aborted) return Promise.reject(signal.reason);
    for (const hold of this.#holds) hold.reached();
    return new Promise((resolve, reject) => {
      const wake = () => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) reject(signal.reason);
        else resolve();
      };
      const onAbort = () => {
        this.#holdWaiters.delete(wake);
        reject(signal.reason);
      };
      this.#holdWaiters.add(wake);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Before delta `index`: waits for holds, then the time to first token or the token interval. */
  async #pace(index: number, signal: AbortSignal): Promise<void> {
    await this.#waitForHolds(signal);
    const { timeToFirstTokenMs, tokensPerSecond } = this.#options;
    const ms = index === 0 ? timeToFirstTokenMs : tokensPerSecond > 0 ? 1000 / tokensPerSecond : 0;
    await sleep(ms, signal);
    if (signal.aborted) throw signal.reason;
  }

  #produce(input: string): string[] {
    const deltas = toDeltas(this.reply(input));
    return this.#options.reasoning === "think" ? [...THINK_DELTAS, ...deltas] : deltas;
  }

  /** What the Chat Completions route (`openai_chat.ts`) uses of this server. */
  #model(): FakeModel {
    return {
      produce: (input) => this.#produce(input),
      pace: (index, signal) => this.#pace(index, signal),
      track: (work) => this.#track(work),
      closing: this.#closing.signal,
      disconnected: () => this.#aborted++,
      contextWindow: this.#options.contextWindow,
      reasoning: this.#options.reasoning,
      countTokens,
      vision: this.#options.vision,
    };
  }

  // -------------------------------------------------------------------------
  // Conversations API

  #conversationState(id: string, param = "conversation_id"): ConversationState {
    checkPrefix(id, "conv", param);
    const state = this.#conversations.get(id);
    if (!state) {
      throw invalid(
        `Conversation with id '${id}' not found.`,
        param === "conversation" ? param : null,
        null,
        404,
      );
    }
    return state;
  }

  #checkUnlocked(state: ConversationState): void {
    if (state.lockedBy) {
      throw invalid(
        "Another process is currently operating on this conversation. Please retry in a few " +
          "seconds.",
        "conversation",
        "conversation_locked",
      );
    }
  }

  #createConversation({ body }: Context): Response {
    rejectUnknown(body, ["items", "metadata"]);
    if (body.items !== undefined) throw notModelled("items at creation", "items");
    const metadata = readMetadata(body) ?? {};
    const conversation = {
      id: newId.conversation(),
      object: "conversation" as const,
      created_at: now(),
      metadata,
    };
    this.#conversations.set(conversation.id, { conversation, items: [] });
    return json(conversation);
  }

  /** The start-up check of the Conversations backend asks for `conv_probe`: a 404. */
  #getConversation({ match }: Context): Response {
    return json(this.#conversationState(match[0]).conversation);
  }

  #listItems({ match, query }: Context): Response {
    const state = this.#conversationState(match[0]);
    return page(
      state.items,
      query,
      (id) => invalid(`Item with id '${id}' not found.`, "after", null, 404),
    );
  }

  // -------------------------------------------------------------------------
  // Responses API

  #createResponse({ body }: Context): Response {
    rejectUnknown(body, RESPONSE_PARAMS);
    const model = requireString(body, "model");
    const instructions = optional(body, "instructions", "string") ?? null;
    if (optional(body, "stream", "boolean") !== true) {
      throw notModelled("non-streamed responses", "stream");
    }
    const metadata = readMetadata(body) ?? {};
    const includeObfuscation = readStreamOptions(body).include_obfuscation ?? true;
    const compactThreshold = readCompactThreshold(body);
    const userFields = readUserFields(body);
    const maxOutputTokens = optional(body, "max_output_tokens", "number");
    if (maxOutputTokens !== undefined && maxOutputTokens < 16) {
      throw invalid(
        `Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but ` +
          `got ${maxOutputTokens} instead.`,
        "max_output_tokens",
        "integer_below_min_value",
      );
    }

    let conversationId: string | undefined;
    const rawConversation = body.conversation;
    if (rawConversation !== undefined && rawConversation !== null) {
      if (typeof rawConversation === "string") conversationId = rawConversation;
      else if (isObject(rawConversation) && typeof rawConversation.id === "string") {
        conversationId = rawConversation.id;
      } else throw wrongType("conversation", "a string or an object with an 'id'", rawConversation);
    }
    if (body.previous_response_id !== undefined) {
      if (conversationId === undefined) throw notModelled("previous_response_id");
      throw invalid(
        "Mutually exclusive parameters: Ensure you are only providing one of: " +
          "'previous_response_id' or 'conversation'.",
        null,
        "mutually_exclusive_parameters",
      );
    }
    const store = optional(body, "store", "boolean") ?? true;
    if (conversationId === undefined && store) {
      throw notModelled("stored responses (without a conversation, only store: false)", "store");
    }
    if (body.input === undefined) {
      throw invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter");
    }
    const inputItems = toInputItems(body.input, this.#options.vision);
    const conversation = conversationId === undefined
      ? undefined
      : this.#conversationState(conversationId, "conversation");
    let context = "";
    if (conversation) {
      this.#checkUnlocked(conversation);
      context = renderedItems(conversation.items).map(itemText).join("");
    }

    // The model answers the last user message (a stateless input holds the whole history).
    const lastUser = inputItems.findLast((i) => i.role === "user");
    const userText = lastUser ? itemText(lastUser) : "";
    const ownInput = (instructions ?? "") + inputItems.map(itemText).join("");
    let inputTokens = countTokens(context + ownInput);
    // Compaction happens first, so the response renders only the new input after it.
    let compaction: CompactionItem | undefined;
    if (conversation && compactThreshold !== undefined && inputTokens > compactThreshold) {
      compaction = compactionItem();
      inputTokens = countTokens(ownInput);
    }
    if (inputTokens > this.#options.contextWindow) {
      throw contextLengthExceeded("responses", this.#options.contextWindow, inputTokens);
    }
    let deltas: string[];
    let cut: boolean;
    try {
      ({ deltas, cut } = limitOutput(this.#produce(userText), maxOutputTokens, countTokens));
    } catch (error) {
      console.error("FakeOpenAI: reply() threw", error);
      throw injectedError(500, 0);
    }
    const messageIndex = compaction ? 1 : 0;

    const response: WireResponse = {
      id: newId.response(),
      object: "response",
      created_at: now(),
      status: "in_progress",
      background: false,
      completed_at: null,
      conversation: conversation ? { id: conversation.conversation.id } : null,
      error: null,
      incomplete_details: null,
      instructions,
      max_output_tokens: maxOutputTokens ?? null,
      max_tool_calls: null,
      model,
      output: [],
      parallel_tool_calls: true,
      previous_response_id: null,
      prompt_cache_key: userFields.prompt_cache_key,
      reasoning: { effort: null, summary: null },
      safety_identifier: userFields.safety_identifier,
      service_tier: "auto",
      store,
      temperature: optional(body, "temperature", "number") ?? 1,
      text: { format: { type: "text" }, verbosity: "medium" },
      tool_choice: "auto",
      tools: [],
      top_logprobs: 0,
      top_p: optional(body, "top_p", "number") ?? 1,
      truncation: "disabled",
      usage: null,
      metadata,
      access_programs: null,
    };
    if (conversation) conversation.lockedBy = response.id;

    const finish = (text: string, itemId: string) => {
      const item: OutputMessage = {
        id: itemId,
        type: "message",
        status: cut ? "incomplete" : "completed",
        content: [outputText(text)],
        role: "assistant",
      };
      response.output = compaction ? [compaction, item] : [item];
      response.status = cut ? "incomplete" : "completed";
      if (cut) response.incomplete_details = { reason: "max_output_tokens" };
      response.completed_at = now();
      response.service_tier = "default";
      const outputTokens = countTokens(text);
      response.usage = {
        input_tokens: inputTokens,
        input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
        output_tokens: outputTokens,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: inputTokens + outputTokens,
      };
      if (conversation && this.#conversations.has(conversation.conversation.id)) {
        const output = structuredClone(response.output) as ConversationState["items"];
        conversation.items.push(...inputItems, ...output);
      }
    };
    const unlock = () => {
      if (conversation?.lockedBy === response.id) conversation.lockedBy = undefined;
    };

    const sink = new SseSink(() => this.#aborted++);
    const signal = AbortSignal.any([sink.disconnected, this.#closing.signal]);
    const emit = (type: string, fields: Json) =>
      sink.send(type, { type, sequence_number: sink.nextSequence(), ...fields });
    const snapshot = () => structuredClone(response);

    this.#track((async () => {
      const itemId = newId.item();
      let text = "";
      try {
        emit("response.created", { response: snapshot() });
        emit("response.in_progress", { response: snapshot() });
        const item: OutputMessage = {
          id: itemId,
          type: "message",
          status: "in_progress",
          content: [],
          role: "assistant",
        };
        if (compaction) {
          emit("response.output_item.added", { output_index: 0, item: compaction });
          emit("response.output_item.done", { output_index: 0, item: compaction });
        }
        emit("response.output_item.added", { output_index: messageIndex, item });
        const where = { item_id: itemId, output_index: messageIndex, content_index: 0 };
        emit("response.content_part.added", { ...where, part: outputText("") });
        for (const [index, delta] of deltas.entries()) {
          await this.#pace(index, signal);
          text += delta;
          emit("response.output_text.delta", {
            ...where,
            delta,
            logprobs: [],
            ...(includeObfuscation
              ? { obfuscation: randomAlnum(Math.max(1, 16 - delta.length)) }
              : {}),
          });
        }
        if (signal.aborted) throw signal.reason;
        emit("response.output_text.done", { ...where, text, logprobs: [] });
        emit("response.content_part.done", { ...where, part: outputText(text) });
        finish(text, itemId);
        emit("response.output_item.done", {
          output_index: messageIndex,
          item: response.output[messageIndex],
        });
        emit(cut ? "response.incomplete" : "response.completed", { response: snapshot() });
        sink.close();
      } catch {
        if (response.status !== "completed") response.status = "cancelled";
        sink.close();
      } finally {
        unlock();
      }
    })());
    return sse(sink);
  }

  // -------------------------------------------------------------------------
  // Legacy Assistants API

  #checkAssistant(id: string): void {
    checkPrefix(id, "asst", "assistant_id");
    if (!this.#options.assistants.includes(id)) throw noSuch("assistant", id);
  }

  #threadState(id: string): ThreadState {
    checkPrefix(id, "thread", "thread_id");
    const state = this.#threads.get(id);
    if (!state) throw noSuch("thread", id);
    return state;
  }

  #activeRun(state: ThreadState): RunState | undefined {
    return state.runs.find((r) => ACTIVE_RUN.has(r.run.status));
  }

  #createThread({ body }: Context): Response {
    rejectUnknown(body, ["messages", "metadata", "tool_resources"]);
    if (body.messages !== undefined) throw notModelled("messages at creation", "messages");
    if (body.tool_resources !== undefined) throw notModelled("tool_resources", "tool_resources");
    const thread: Thread = {
      id: newId.thread(),
      object: "thread",
      created_at: now(),
      metadata: readMetadata(body) ?? {},
      tool_resources: {},
    };
    this.#threads.set(thread.id, { thread, messages: [], runs: [] });
    return json(thread);
  }

  #createMessage({ match, body }: Context): Response {
    const state = this.#threadState(match[0]);
    const param = threadMessageParam(body);
    const active = this.#activeRun(state);
    if (active) {
      throw invalid(
        `Can't add messages to ${state.thread.id} while a run ${active.run.id} is active.`,
      );
    }
    const message = newThreadMessage(state.thread.id, param.role, param.text, param.metadata);
    state.messages.push(message);
    return json(message);
  }

  #listMessages({ match, query }: Context): Response {
    if (query.has("run_id")) throw notModelled("run_id", "run_id");
    return page(this.#threadState(match[0]).messages, query, (id) => noSuch("message", id));
  }

  #runState(state: ThreadState, runId: string): RunState {
    checkPrefix(runId, "run", "run_id");
    const run = state.runs.find((r) => r.run.id === runId);
    if (!run) throw noSuch("run", runId);
    return run;
  }

  #getRun({ match }: Context): Response {
    return json(this.#runState(this.#threadState(match[0]), match[1]).run);
  }

  #cancelRun({ match }: Context): Response {
    const runState = this.#runState(this.#threadState(match[0]), match[1]);
    const { run } = runState;
    if (!ACTIVE_RUN.has(run.status) || run.status === "cancelling") {
      throw invalid(`Cannot cancel run with status '${run.status}'.`);
    }
    run.status = "cancelling";
    const answer = json(run);
    runState.cancel.abort(new Error("run cancelled"));
    return answer;
  }

  #createRun({ match, body }: Context): Response {
    const state = this.#threadState(match[0]);
    rejectUnknown(body, RUN_PARAMS);
    const assistantId = requireString(body, "assistant_id");
    this.#checkAssistant(assistantId);
    if (optional(body, "stream", "boolean") !== true) {
      throw notModelled("non-streamed runs", "stream");
    }
    if (body.additional_messages !== undefined) {
      throw notModelled("additional_messages", "additional_messages");
    }
    const metadata = readMetadata(body) ?? {};
    const instructions = (optional(body, "instructions", "string") ?? ASSISTANT_INSTRUCTIONS) +
      (optional(body, "additional_instructions", "string") ?? "");
    const model = optional(body, "model", "string") ?? "gpt-4o";
    const active = this.#activeRun(state);
    if (active) {
      throw invalid(`Thread ${state.thread.id} already has an active run ${active.run.id}.`);
    }
    const createdAt = now();
    const run: Run = {
      id: newId.run(),
      object: "thread.run",
      created_at: createdAt,
      assistant_id: assistantId,
      thread_id: state.thread.id,
      status: "queued",
      started_at: null,
      expires_at: createdAt + 600,
      cancelled_at: null,
      failed_at: null,
      completed_at: null,
      required_action: null,
      last_error: null,
      model,
      instructions,
      tools: [],
      metadata,
      temperature: optional(body, "temperature", "number") ?? 1,
      top_p: optional(body, "top_p", "number") ?? 1,
      max_completion_tokens: optional(body, "max_completion_tokens", "number") ?? null,
      max_prompt_tokens: optional(body, "max_prompt_tokens", "number") ?? null,
      truncation_strategy: { type: "auto", last_messages: null },
      incomplete_details: null,
      usage: null,
      response_format: "auto",
      tool_choice: "auto",
      parallel_tool_calls: true,
    };
    const runState: RunState = { run, cancel: new AbortController() };
    state.runs.push(runState);
    const sink = new SseSink(() => this.#aborted++);
    this.#track(this.#executeRun(state, runState, sink));
    return sse(sink);
  }

  /** Plays one run to its end, streaming its events to `sink` while the client listens. */
  async #executeRun(state: ThreadState, runState: RunState, sink: SseSink): Promise<void> {
    const { run } = runState;
    const signal = AbortSignal.any([runState.cancel.signal, this.#closing.signal]);
    const emit = (event: string, data: unknown) => sink.send(event, structuredClone(data));
    const prompt = [...state.messages].reverse().find((m) => m.role === "user");
    const promptText = prompt ? threadMessageText(prompt) : "";
    const inputTokens = countTokens(
      run.instructions + state.messages.map(threadMessageText).join(""),
    );
    let step: RunStep | undefined;
    let message: ThreadMessage | undefined;
    try {
      emit("thread.run.created", run);
      emit("thread.run.queued", run);
      let deltas: string[];
      try {
        deltas = this.#produce(promptText);
      } catch (error) {
        console.error("FakeOpenAI: reply() threw", error);
        run.status = "failed";
        run.failed_at = now();
        run.last_error = {
          code: "server_error",
          message: "Sorry, something went wrong.",
        };
        emit("thread.run.failed", run);
        sink.done();
        sink.close();
        return;
      }
      run.status = "in_progress";
      run.started_at = now();
      emit("thread.run.in_progress", run);
      message = {
        ...newThreadMessage(state.thread.id, "assistant", "", {}),
        assistant_id: run.assistant_id,
        run_id: run.id,
        status: "in_progress",
        content: [],
      };
      step = {
        id: newId.step(),
        object: "thread.run.step",
        created_at: now(),
        run_id: run.id,
        assistant_id: run.assistant_id,
        thread_id: state.thread.id,
        type: "message_creation",
        status: "in_progress",
        cancelled_at: null,
        completed_at: null,
        expired_at: null,
        failed_at: null,
        last_error: null,
        step_details: { type: "message_creation", message_creation: { message_id: message.id } },
        usage: null,
        metadata: null,
      };
      emit("thread.run.step.created", step);
      emit("thread.run.step.in_progress", step);
      state.messages.push(message);
      emit("thread.message.created", message);
      emit("thread.message.in_progress", message);
      let text = "";
      for (const [index, delta] of deltas.entries()) {
        await this.#pace(index, signal);
        text += delta;
        message.content = [textBlock(text)];
        emit("thread.message.delta", {
          id: message.id,
          object: "thread.message.delta",
          delta: { content: [{ index: 0, type: "text", text: { value: delta, annotations: [] } }] },
        });
      }
      if (signal.aborted) throw signal.reason;
      const at = now();
      message.content = [textBlock(text)];
      message.status = "completed";
      message.completed_at = at;
      emit("thread.message.completed", message);
      const outputTokens = countTokens(text);
      const usage = {
        prompt_tokens: inputTokens,
        completion_tokens: outputTokens,
        total_tokens: inputTokens + outputTokens,
      };
      step.status = "completed";
      step.completed_at = at;
      step.usage = usage;
      emit("thread.run.step.completed", step);
      run.status = "completed";
      run.completed_at = at;
      run.usage = usage;
      emit("thread.run.completed", run);
    } catch {
      const at = now();
      if (runState.cancel.signal.aborted) {
        if (message && message.status === "in_progress") {
          message.status = "incomplete";
          message.incomplete_at = at;
          message.incomplete_details = { reason: "run_cancelled" };
          emit("thread.message.incomplete", message);
        }
        if (step && step.status === "in_progress") {
          step.status = "cancelled";
          step.cancelled_at = at;
          emit("thread.run.step.cancelled", step);
        }
        run.status = "cancelled";
        run.cancelled_at = at;
        emit("thread.run.cancelled", run);
      } else {
        // The server is closing: leave the run as it is and end the stream without `done`.
        sink.close();
        return;
      }
    }
    sink.done();
    sink.close();
  }
}

// ---------------------------------------------------------------------------
// Shapes

function outputText(text: string): OutputText {
  return { type: "output_text", annotations: [], logprobs: [], text };
}

function textBlock(value: string): OpenAI.Beta.Threads.TextContentBlock {
  return { type: "text", text: { value, annotations: [] } };
}

/** The text of a conversation item (input and output text parts). */
function itemText(item: { type: string; content?: unknown }): string {
  if (item.type !== "message" || !Array.isArray(item.content)) return "";
  return item.content
    .map((part) => isObject(part) && typeof part.text === "string" ? part.text : "")
    .join("");
}

/**
 * A response's `input` as conversation items: a string is one user message; an array
 * holds messages (`EasyInputMessage`) as the bot sends them: the stateless history with
 * string content, and the new user message with string content or content parts (text,
 * images, files; `vision` false refuses the last two). Other item types, roles and
 * parts, and assistant content parts, are not modelled.
 */
function toInputItems(input: unknown, vision: boolean): ConversationMessage[] {
  if (typeof input === "string") input = [{ role: "user", content: input }];
  if (!Array.isArray(input)) throw wrongType("input", "a string or an array", input);
  return input.map((raw, i) => {
    const at = `input[${i}]`;
    if (!isObject(raw)) throw wrongType(at, "an object", raw);
    rejectUnknown(raw, ["type", "role", "content"], `${at}.`);
    if ((raw.type ?? "message") !== "message") throw notModelled(`${at}.type '${raw.type}'`);
    const { role, content } = raw;
    if (role === undefined || content === undefined) {
      const missing = role === undefined ? "role" : "content";
      throw invalid(
        `Missing required parameter: '${at}.${missing}'.`,
        `${at}.${missing}`,
        "missing_required_parameter",
      );
    }
    if (role !== "user" && role !== "assistant") throw notModelled(`role '${role}'`, `${at}.role`);
    if (Array.isArray(content)) {
      if (role === "assistant") throw notModelled("assistant content parts", `${at}.content`);
      return {
        type: "message",
        id: newId.item(),
        status: "completed",
        role,
        content: content.map((part, j) => inputPart(part, `${at}.content[${j}]`, vision)),
      };
    }
    if (typeof content !== "string") {
      throw wrongType(`${at}.content`, "a string or an array", content);
    }
    return {
      type: "message",
      id: newId.item(),
      status: "completed",
      role,
      content: [role === "user" ? { type: "input_text", text: content } : outputText(content)],
    };
  });
}

const INPUT_PARTS = ["input_text", "input_image", "input_file"];

/** One content part of a user message, checked, as the conversation keeps it. */
function inputPart(part: unknown, at: string, vision: boolean): ConversationMessage["content"][0] {
  if (!isObject(part)) throw wrongType(at, "an object", part);
  if (typeof part.type !== "string" || !INPUT_PARTS.includes(part.type)) {
    throw invalid(
      `Invalid value: '${String(part.type)}'. Supported values are: 'input_text', ` +
        "'input_image', and 'input_file'.",
      `${at}.type`,
      "invalid_value",
    );
  }
  if (part.type === "input_image") checkInputImage(part, at, vision);
  else if (part.type === "input_file") checkInputFile(part, at, vision);
  else {
    rejectUnknown(part, ["type", "text", "prompt_cache_breakpoint"], `${at}.`);
    if (part.prompt_cache_breakpoint !== undefined) {
      throw notModelled("'prompt_cache_breakpoint'", `${at}.prompt_cache_breakpoint`);
    }
    if (typeof part.text !== "string") throw wrongType(`${at}.text`, "a string", part.text);
  }
  return structuredClone(part) as unknown as ConversationMessage["content"][0];
}

function threadMessageText(message: ThreadMessage): string {
  return message.content.map((c) => c.type === "text" ? c.text.value : "").join("");
}

/** The body of `messages.create`: a user or assistant message with text content. */
function threadMessageParam(raw: Json) {
  rejectUnknown(raw, ["role", "content", "attachments", "metadata"]);
  if (raw.attachments !== undefined) throw notModelled("attachments", "attachments");
  const { role, content } = raw;
  if (role === undefined) {
    throw invalid("Missing required parameter: 'role'.", "role", "missing_required_parameter");
  }
  if (role !== "user" && role !== "assistant") {
    throw invalid(
      `Invalid value: '${String(role)}'. Supported values are: 'user' and 'assistant'.`,
      "role",
      "invalid_value",
    );
  }
  if (content === undefined) {
    throw invalid(
      "Missing required parameter: 'content'.",
      "content",
      "missing_required_parameter",
    );
  }
  if (Array.isArray(content)) throw notModelled("content parts", "content");
  if (typeof content !== "string") throw wrongType("content", "a string or an array", content);
  if (content.length === 0) {
    throw invalid(
      "Invalid 'content': string too short. Expected a string with minimum length 1, " +
        "but got an empty string instead.",
      "content",
      "string_below_min_length",
    );
  }
  return { role: role as "user" | "assistant", text: content, metadata: readMetadata(raw) ?? {} };
}

function newThreadMessage(
  threadId: string,
  role: "user" | "assistant",
  text: string,
  metadata: Record<string, string>,
): ThreadMessage {
  return {
    id: newId.threadMessage(),
    object: "thread.message",
    created_at: now(),
    assistant_id: null,
    thread_id: threadId,
    run_id: null,
    role,
    content: [textBlock(text)],
    attachments: [],
    metadata,
    status: "completed",
    completed_at: null,
    incomplete_at: null,
    incomplete_details: null,
  };
}

// ---------------------------------------------------------------------------
// HTTP answers

function baseHeaders(): Record<string, string> {
  return {
    "x-request-id": newId.request(),
    "openai-version": "2020-10-01",
    "openai-processing-ms": "1",
  };
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...baseHeaders(), "content-type": "application/json", ...headers },
  });
}

function errorResponse(error: HttpError): Response {
  return json({ error: error.error }, error.status, error.headers);
}

function sse(sink: SseSink): Response {
  return new Response(sink.body, {
    headers: {
      ...baseHeaders(),
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    },
  });
}
