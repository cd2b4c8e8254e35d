/**
 * Reading a streamed Responses API answer with less work per event than the SDK's
 * `Stream`. The request itself still goes through the SDK (`.asResponse()` keeps its
 * retries, error classes and headers); only the body is read here, because the bench
 * measured about 50 µs of the main thread per event in the SDK's layered async
 * generators (bench/README.md, "Where an answer's CPU goes"), and an answer is some
 * 500 events of a few characters each.
 *
 * - One loop over the body's chunks; events are split on blank lines.
 * - Events the bot does not read (`response.created`, `…output_item.added`,
 *   `…content_part.done`, `…output_text.done`, …) are skipped by their `event:` line,
 *   before their JSON is parsed.
 * - Text deltas that arrive in one network chunk are joined into one delta, so the
 *   bot's answer loop and its preview run once per chunk, not once per token.
 * - An `error` event is thrown as the SDK's `APIError`, as the SDK's `Stream` does.
 */
import { APIError } from "openai";
import type OpenAI from "openai";

type StreamEvent = OpenAI.Responses.ResponseStreamEvent;

/** The events the bot reads; each yielded as the SDK types it. */
export type ResponseEvent = Extract<
  StreamEvent,
  {
    type:
      | "response.output_text.delta"
      | "response.completed"
      | "response.incomplete"
      | "response.failed";
  }
>;

const WANTED = new Set([
  "response.output_text.delta",
  "response.completed",
  "response.incomplete",
  "response.failed",
  "error",
]);

/**
 * The events of a streamed response body that the bot reads, in order, with the
 * text deltas of one network chunk joined. Stops at the end of the body; an `error`
 * event throws an `APIError`; a body that breaks off throws what `fetch` threw.
 */
export async function* responseEvents(response: Response): AsyncGenerator<ResponseEvent> {
  if (!response.body) return;
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let delta: Extract<ResponseEvent, { type: "response.output_text.delta" }> | undefined;
    let end: number;
    while ((end = blankLine(buffer)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer[end] === "\r" ? 4 : 2));
      const event = parse(block);
      if (!event) continue;
      if (event.type === "response.output_text.delta") {
        if (delta) delta.delta += event.delta;
        else delta = event;
        continue;
      }
      if (delta) {
        yield delta;
        delta = undefined;
      }
      yield event;
    }
    if (delta) yield delta;
  }
  // A server may leave off the last blank line (the SDK's decoder allows for it too).
  buffer += decoder.decode();
  if (buffer.trim()) {
    const event = parse(buffer);
    if (event) yield event;
  }
}

/** Where the first event ends (its blank line), or -1 when none has ended yet. */
function blankLine(buffer: string): number {
  const lf = buffer.indexOf("\n\n");
  const crlf = buffer.indexOf("\r\n\r\n");
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return crlf;
  return lf;
}

/** One SSE block → the event, when it is one the bot reads. */
function parse(block: string): ResponseEvent | undefined {
  let name = "";
  let data = "";
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith("event:")) {
      name = line.slice(6).trim();
      if (!WANTED.has(name)) return undefined;
    } else if (line.startsWith("data:")) {
      data += (data ? "\n" : "") + line.slice(line[5] === " " ? 6 : 5);
    }
  }
  if (!data || data === "[DONE]") return undefined;
  const event = JSON.parse(data) as StreamEvent | { type: "error"; message?: string };
  // Servers that send no `event:` lines are filtered by the type inside.
  if (!name && !WANTED.has(event.type)) return undefined;
  if (event.type === "error") {
    throw new APIError(undefined, event, (event as { message?: string }).message, undefined);
  }
  return event as ResponseEvent;
}
