/** Reading a streamed Responses body (`sse.ts`): framing, skipping, joining, errors. */
import assert from "node:assert/strict";
import { APIError } from "openai";
import { responseEvents } from "../../src/assistant/sse.ts";

const sse = (type: string, data: Record<string, unknown>, eol = "\n") =>
  `event: ${type}${eol}data: ${JSON.stringify({ type, ...data })}${eol}${eol}`;
const delta = (text: string, eol?: string) =>
  sse("response.output_text.delta", { delta: text, item_id: "msg_1", sequence_number: 1 }, eol);

/** A Response whose body arrives in exactly these chunks. */
function body(...chunks: string[]): Response {
  const encoder = new TextEncoder();
  return new Response(ReadableStream.from(chunks.map((c) => encoder.encode(c))));
}

async function collect(response: Response) {
  const events = [];
  for await (const event of responseEvents(response)) events.push(event);
  return events;
}

Deno.test("sse: deltas of one chunk are joined; events the bot ignores are never parsed", async () => {
  const events = await collect(body(
    sse("response.created", { response: {} }) + delta("Hel") + delta("lo"),
    delta(", wor") + sse("response.output_text.done", { text: "ignored" }) + delta("ld"),
    // An ignored event with data that is not even JSON: skipped by its name alone.
    "event: response.in_progress\ndata: {not json\n\n" +
      sse("response.completed", { response: { usage: { input_tokens: 3, output_tokens: 2 } } }),
  ));
  assert.deepEqual(
    events.map((e) => e.type === "response.output_text.delta" ? e.delta : e.type),
    ["Hello", ", world", "response.completed"],
  );
});

Deno.test("sse: events split across chunks, CRLF framing and multi-line data", async () => {
  const whole = delta("a", "\r\n") + delta("b") +
    'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",\ndata: "delta":"c"}\n\n';
  const pieces = whole.match(/[\s\S]{1,7}/g)!;
  const events = await collect(body(...pieces));
  const text = events.map((e) => e.type === "response.output_text.delta" ? e.delta : "").join("");
  assert.equal(text, "abc");
});

Deno.test("sse: an error event is thrown as the SDK's APIError", async () => {
  await assert.rejects(
    collect(body(delta("x") + sse("error", { code: "server_error", message: "boom" }))),
    (error) => error instanceof APIError && /boom/.test(error.message),
  );
});

Deno.test("sse: the last event is read when the server leaves off the final blank line", async () => {
  const last = sse("response.completed", { response: { usage: null } }).trimEnd();
  const events = await collect(body(delta("x") + last));
  assert.deepEqual(events.map((e) => e.type), ["response.output_text.delta", "response.completed"]);
});
