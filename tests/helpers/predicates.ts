/**
 * What the tests ask of the fakes' records: who a Bot API call went to, what it says,
 * which answers were delivered, what reached OpenAI. One definition each, shared by
 * every test that reads `FakeTelegram.calls` or `FakeOpenAI.requests`.
 */
import type { FakeTelegram, RecordedCall } from "../fakes/telegram.ts";
import type { FakeOpenAI } from "../fakes/openai.ts";

/** A call made to this chat (whatever its outcome). */
export const sentTo = (chatId: number) => (c: RecordedCall) => c.params.chat_id === chatId;

/** The Markdown of a rich message or rich draft; "undefined" when the call has none. */
export const markdownOf = (c: RecordedCall) =>
  String((c.params.rich_message as { markdown?: string } | undefined)?.markdown);

/** What a call shows: a classic message's text, else a rich message's Markdown. */
export const textOf = (c: RecordedCall) =>
  c.params.text === undefined ? markdownOf(c) : String(c.params.text);

/** A call whose text (or rich Markdown) matches. */
export const says = (re: RegExp) => (c: RecordedCall) => re.test(textOf(c));

/** A successful call to this chat whose text (or rich Markdown) matches. */
export const saysTo = (chatId: number, re: RegExp) => (c: RecordedCall) =>
  c.ok && c.params.chat_id === chatId && re.test(textOf(c));

/** A successful call with any parameter matching (searched in its JSON). */
export const mentions = (re: RegExp) => (c: RecordedCall) =>
  c.ok && re.test(JSON.stringify(c.params));

/** The message id a call replies to (its `reply_parameters`). */
export const repliedTo = (c: RecordedCall) =>
  (c.params.reply_parameters as { message_id: number } | undefined)?.message_id;

/** The methods that deliver a final answer: a classic or a rich message. */
const FINAL = ["sendMessage", "sendRichMessage"];

/** Answers delivered so far (classic or rich messages) whose parameters match `re`. */
export const answers = (telegram: FakeTelegram, re: RegExp): RecordedCall[] =>
  FINAL.flatMap((m) => telegram.callsTo(m)).filter(mentions(re));

/** The first delivered answer (classic or rich message) whose parameters match `re`. */
export function waitForAnswer(
  telegram: FakeTelegram,
  re: RegExp,
  timeoutMs?: number,
): Promise<RecordedCall> {
  return Promise.any(FINAL.map((m) => telegram.waitForCall(m, mentions(re), { timeoutMs })));
}

/** Requests the fake OpenAI received on this exact path, e.g. "/v1/responses". */
export const requestsTo = (openai: FakeOpenAI, path: string) =>
  openai.requests.filter((r) => r.path === path);

/**
 * What was asked of the model through Responses or Chat Completions (a POST naming a
 * `model`), in order, optionally on one path. The start-up check names no model (nor
 * do legacy runs: count those with {@link requestsTo}).
 */
export const modelRequests = (openai: FakeOpenAI, path?: string) =>
  openai.requests.filter((r) =>
    r.method === "POST" && (path === undefined || r.path === path) &&
    typeof (r.body as { model?: unknown } | undefined)?.model === "string"
  );

/** The conversation of every `POST /v1/responses`, in order. */
export const conversationsUsed = (openai: FakeOpenAI) =>
  requestsTo(openai, "/v1/responses").map((r) => (r.body as { conversation: string }).conversation);

/**
 * Resolves once `condition` holds, for state the fakes expose without an event (the
 * fake OpenAI notices a dropped stream only when it next writes to it).
 */
export async function until(condition: () => boolean, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
