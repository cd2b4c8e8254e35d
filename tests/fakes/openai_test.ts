/**
 * The fake OpenAI server driven by the real SDK (`npm:openai`), over loopback HTTP.
 */
import assert from "node:assert/strict";
import OpenAI, {
  APIError,
  AuthenticationError,
  BadRequestError,
  NotFoundError,
  RateLimitError,
} from "openai";
import { FakeOpenAI } from "./openai.ts";
import { until } from "../helpers/predicates.ts";
import { withFakeOpenAI } from "../helpers/openai.ts";

const withFake = withFakeOpenAI;

/** Reads a streamed response to its end: its text, the completed response, any padding. */
async function readStream(stream: AsyncIterable<OpenAI.Responses.ResponseStreamEvent>) {
  let text = "";
  let padded = false;
  let completed: OpenAI.Responses.Response | undefined;
  for await (const event of stream) {
    if (event.type === "response.output_text.delta") {
      text += event.delta;
      padded ||= "obfuscation" in event;
    }
    if (event.type === "response.completed") completed = event.response;
  }
  return { text, completed, padded };
}

/**
 * One streamed answer to `input`, asked as the bot asks: in `conversation` when given,
 * else stateless (`store: false`).
 */
async function ask(client: OpenAI, input: string, conversation?: string | { id: string }) {
  return await readStream(
    await client.responses.create({
      model: "gpt-test",
      ...(conversation ? { conversation } : { store: false }),
      input,
      stream: true,
      stream_options: { include_obfuscation: false },
    }),
  );
}

function requestsTo(fake: FakeOpenAI, method: string, path: string | RegExp) {
  return fake.requests.filter((r) =>
    r.method === method && (typeof path === "string" ? r.path === path : path.test(r.path))
  );
}

Deno.test("conversation + streamed response: deltas, usage, items in both orders", async () => {
  await withFake({}, async (fake, client) => {
    fake.reply = (input) => ["Hel", "lo, ", input];
    const conversation = await client.conversations.create({ metadata: { user: "42" } });
    assert.match(conversation.id, /^conv_[0-9a-f]{48}$/);
    assert.equal(conversation.object, "conversation");
    assert.deepEqual(conversation.metadata, { user: "42" });

    const stream = await client.responses.create({
      model: "gpt-test",
      instructions: "Be brief.",
      conversation: conversation.id,
      input: "world",
      stream: true,
    });
    const deltas: string[] = [];
    const types: string[] = [];
    const sequence: number[] = [];
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      sequence.push(event.sequence_number);
      if (event.type === "response.output_text.delta") {
        deltas.push(event.delta);
        assert.ok("obfuscation" in event, "deltas are padded by default");
      }
      if (event.type === "response.completed") completed = event.response;
    }
    assert.deepEqual(deltas, ["Hel", "lo, ", "world"]);
    assert.deepEqual(types, [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    assert.deepEqual(sequence, sequence.map((_, i) => i));
    assert.ok(completed);
    assert.equal(completed.status, "completed");
    assert.equal(completed.conversation?.id, conversation.id);
    assert.equal(completed.instructions, "Be brief.");
    const usage = completed.usage;
    assert.ok(usage && usage.input_tokens > 0 && usage.output_tokens === 3);
    assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);

    // A second turn: the history counts as input.
    fake.reply = () => "Second answer";
    const second = await ask(client, "again", { id: conversation.id });
    assert.equal(second.text, "Second answer");
    assert.equal(second.padded, false, "include_obfuscation: false drops the padding");
    assert.ok(second.completed!.usage!.input_tokens > usage.input_tokens);

    const asc = [];
    for await (
      const item of client.conversations.items.list(conversation.id, { order: "asc", limit: 1 })
    ) asc.push(item);
    const texts = asc.map((item) => {
      assert.equal(item.type, "message");
      if (item.type !== "message") return "";
      const part = item.content[0];
      return `${item.role}:${"text" in part ? part.text : ""}`;
    });
    assert.deepEqual(texts, [
      "user:world",
      "assistant:Hello, world",
      "user:again",
      "assistant:Second answer",
    ]);
    // Auto-pagination followed `last_id` with `after`, one item per page, until has_more=false.
    const pages = requestsTo(fake, "GET", `/v1/conversations/${conversation.id}/items`);
    assert.equal(pages.length, 4);
    assert.match(pages[1].query, new RegExp(`after=${asc[0].id}`));

    const desc = await client.conversations.items.list(conversation.id, { limit: 3 });
    assert.deepEqual(desc.data.map((i) => i.id), asc.slice(1).reverse().map((i) => i.id));
    assert.equal(desc.has_more, true);
    assert.equal(desc.last_id, asc[1].id);
    const rest = await desc.getNextPage();
    assert.deepEqual(rest.data.map((i) => i.id), [asc[0].id]);
    assert.equal(rest.has_more, false);
    assert.deepEqual(
      (fake.conversationItems(conversation.id) as { id: string }[]).map((i) => i.id),
      asc.map((i) => i.id),
    );
  });
});

Deno.test("a wrong or missing API key gets OpenAI's 401", async () => {
  await withFake({}, async (fake) => {
    const bad = new OpenAI({
      apiKey: "sk-wrong-key-abcdefghijklmnop-xyz1",
      baseURL: fake.baseURL,
      maxRetries: 0,
    });
    const error = await bad.conversations.create().catch((e) => e);
    assert.ok(error instanceof AuthenticationError);
    assert.equal(error.status, 401);
    assert.equal(error.code, "invalid_api_key");
    assert.match(error.message, /Incorrect API key provided: sk-wro\*+xyz1\./);
    assert.doesNotMatch(error.message, /abcdefghijklmnop/);

    const missing = await fetch(`${fake.baseURL}/conversations`, { method: "POST" });
    assert.equal(missing.status, 401);
    const body = await missing.json();
    assert.match(body.error.message, /You didn't provide an API key/);
  });
});

Deno.test("429 with retry-after, then success: the SDK retries", async () => {
  await withFake({}, async (fake) => {
    const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 2 });
    fake.failNext("/v1/responses", 429, 1, { retryAfterSeconds: 0 });
    assert.equal((await ask(client, "x")).text, "Echo: x");
    assert.equal(requestsTo(fake, "POST", "/v1/responses").length, 2);

    fake.failNext(/^\/v1\/conversations$/, 429, 3, { retryAfterSeconds: 0 });
    const error = await client.conversations.create().catch((e) => e);
    assert.ok(error instanceof RateLimitError);
    assert.equal(error.code, "rate_limit_exceeded");
    assert.equal(error.type, "requests");
    assert.equal(error.headers.get("retry-after"), "0");
    assert.match(error.headers.get("x-request-id") ?? "", /^req_/);
    assert.equal(requestsTo(fake, "POST", "/v1/conversations").length, 3);

    fake.failNext(/conversations/, 500, 1);
    const noRetry = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 });
    const failed = await noRetry.conversations.create().catch((e) => e);
    assert.ok(failed instanceof APIError);
    assert.equal(failed.status, 500);
    assert.equal(failed.type, "server_error");
  });
});

Deno.test("a second response on a busy conversation is conversation_locked", async () => {
  await withFake({}, async (fake, client) => {
    const { id } = await client.conversations.create();
    const hold = fake.hold();
    const first = await client.responses.create({
      model: "gpt-test",
      conversation: id,
      input: "one",
      stream: true,
    });
    await hold.waiting;
    const error = await ask(client, "two", id).catch((e) => e);
    assert.ok(error instanceof BadRequestError);
    assert.equal(error.code, "conversation_locked");
    assert.equal(error.param, "conversation");
    assert.match(error.message, /Another process is currently operating on this conversation/);
    assert.equal(fake.conversationItems(id).length, 0, "nothing is added before completion");

    hold.release();
    assert.equal((await readStream(first)).text, "Echo: one");
    assert.equal((await ask(client, "2", id)).text, "Echo: 2");
    assert.equal(fake.conversationItems(id).length, 4);
    // Each request is recorded with the answer it got.
    const answers = requestsTo(fake, "POST", "/v1/responses").map((r) => [r.status, r.error?.code]);
    assert.deepEqual(answers, [[200, undefined], [400, "conversation_locked"], [200, undefined]]);
  });
});

Deno.test("a client abort mid-stream is counted and adds nothing to the conversation", async () => {
  await withFake({ tokensPerSecond: 50 }, async (fake, client) => {
    const { id } = await client.conversations.create();
    fake.reply = () => Array.from({ length: 50 }, (_, i) => `w${i} `);
    const controller = new AbortController();
    const stream = await client.responses.create(
      { model: "gpt-test", conversation: id, input: "long", stream: true },
      { signal: controller.signal },
    );
    let deltas = 0;
    for await (const event of stream) {
      if (event.type === "response.output_text.delta" && ++deltas === 2) controller.abort();
    }
    assert.equal(deltas, 2);
    await until(() => fake.aborted === 1, "the fake to see the abort");
    assert.equal(fake.conversationItems(id).length, 0);
    // The lock is gone with the stream.
    fake.reply = () => "ok";
    assert.equal((await ask(client, "x", id)).text, "ok");
    assert.equal(fake.aborted, 1);
  });
});

Deno.test("requests OpenAI rejects are rejected", async () => {
  await withFake({}, async (fake, client) => {
    const { id } = await client.conversations.create();
    /** A streamed responses.create with these parameters (typed loosely: some are wrong). */
    const respond = (body: Record<string, unknown>) =>
      client.responses.create(
        { model: "m", input: "x", stream: true, store: false, ...body } as never,
      );
    const cases: [() => Promise<unknown>, number, RegExp, string?][] = [
      [() => respond({ model: undefined }), 400, /Missing required parameter: 'model'\./, "model"],
      [
        () => respond({ conversation: id, previous_response_id: "resp_abc" }),
        400,
        /Mutually exclusive parameters/,
      ],
      [
        () => respond({ conversation: "conv_nope" }),
        404,
        /Conversation with id 'conv_nope' not found\./,
      ],
      [() => respond({ stream: undefined }), 400, /does not model non-streamed responses\./],
      [() => respond({ store: undefined }), 400, /does not model stored responses/, "store"],
      [
        () =>
          respond({
            input: [{ role: "assistant", content: [{ type: "output_text", text: "x" }] }],
          }),
        400,
        /does not model assistant content parts\./,
        "input[0].content",
      ],
      [
        () => respond({ input: [{ role: "user", content: [{ type: "input_audio" }] }] }),
        400,
        /Invalid value: 'input_audio'\. Supported values are: 'input_text', 'input_image', and 'input_file'\./,
        "input[0].content[0].type",
      ],
      [
        () => client.conversations.items.list("thread_abc"),
        400,
        /Expected an ID that begins with 'conv'/,
      ],
      [() => respond({ assistant_id: "asst_test" }), 400, /Unknown parameter: 'assistant_id'\./],
      [
        () => client.conversations.create({ metadata: { n: 1 as unknown as string } }),
        400,
        /Invalid type for 'metadata\.n': expected a string/,
      ],
      [
        () => client.conversations.items.list(id, { limit: 101 }),
        400,
        /integer above maximum value/,
      ],
      [
        () => respond({ input: 42 }),
        400,
        /Invalid type for 'input': expected a string or an array, but got an integer instead\./,
      ],
      [
        () => respond({ stream_options: { include_obfuscation: false, include_usage: true } }),
        400,
        /Unknown parameter: 'stream_options\.include_usage'\./,
        "stream_options.include_usage",
      ],
      [
        () => respond({ stream_options: { include_obfuscation: "no" } }),
        400,
        /Invalid type for 'stream_options\.include_obfuscation': expected a boolean, but got a string/,
      ],
      [
        () => respond({ stream_options: true }),
        400,
        /Invalid type for 'stream_options': expected an object, but got a boolean/,
      ],
    ];
    for (const [request, status, pattern, param] of cases) {
      const error = await request().then(() => undefined, (e) => e);
      assert.ok(error instanceof APIError, `expected an API error for ${pattern}`);
      assert.equal(error.status, status);
      assert.match(error.message, pattern);
      if (param) assert.equal(error.param, param);
    }
    const unknownPath = await fetch(`${fake.baseURL}/nothing/here`, {
      headers: { authorization: `Bearer ${fake.apiKey}` },
    });
    assert.equal(unknownPath.status, 404);
    assert.equal((await unknownPath.json()).error.message, "Invalid URL (GET /v1/nothing/here)");
  });
});

Deno.test("Assistants API: thread, message, streamed run, active-run rules", async () => {
  await withFake({ assistants: ["asst_abc"] }, async (fake, client) => {
    const threads = client.beta.threads;
    const thread = await threads.create({ metadata: { telegram_user_id: "7" } });
    assert.match(thread.id, /^thread_[A-Za-z0-9]{24}$/);
    const message = await threads.messages.create(thread.id, { role: "user", content: "ping" });
    assert.equal(message.object, "thread.message");
    assert.deepEqual(message.content, [{ type: "text", text: { value: "ping", annotations: [] } }]);

    const hold = fake.hold();
    const run = threads.runs.stream(thread.id, { assistant_id: "asst_abc" });
    const deltas: string[] = [];
    run.on("textDelta", (delta) => deltas.push(delta.value ?? ""));
    await hold.waiting;
    await new Promise((resolve) => run.once("messageCreated", resolve));
    const runId = run.currentRun()?.id ?? "";
    assert.match(runId, /^run_/);

    const blocked = await threads.messages.create(thread.id, { role: "user", content: "more" })
      .catch((e) => e);
    assert.ok(blocked instanceof BadRequestError);
    assert.equal(
      blocked.message,
      `400 Can't add messages to ${thread.id} while a run ${runId} is active.`,
    );
    const second = await threads.runs.create(thread.id, { assistant_id: "asst_abc", stream: true })
      .catch((e) => e);
    assert.ok(second instanceof BadRequestError);
    assert.match(
      second.message,
      new RegExp(`Thread ${thread.id} already has an active run ${runId}\\.`),
    );

    hold.release();
    const final = await run.finalRun();
    assert.equal(final.status, "completed");
    assert.ok(final.usage && final.usage.completion_tokens > 0);
    assert.equal(
      final.usage.total_tokens,
      final.usage.prompt_tokens + final.usage.completion_tokens,
    );
    assert.equal(deltas.join(""), "Echo: ping");

    const listed = [];
    for await (const m of threads.messages.list(thread.id, { order: "asc", limit: 1 })) {
      listed.push(m);
    }
    assert.deepEqual(
      listed.map((m) => [m.role, m.content[0].type === "text" ? m.content[0].text.value : ""]),
      [["user", "ping"], ["assistant", "Echo: ping"]],
    );
    assert.equal(listed[1].run_id, runId);

    // create({ stream: true }) yields the raw events, ending with `done`.
    await threads.messages.create(thread.id, { role: "user", content: "again" });
    const raw = await threads.runs.create(thread.id, { assistant_id: "asst_abc", stream: true });
    const events: string[] = [];
    for await (const event of raw) events.push(event.event);
    assert.deepEqual(events, [
      "thread.run.created",
      "thread.run.queued",
      "thread.run.in_progress",
      "thread.run.step.created",
      "thread.run.step.in_progress",
      "thread.message.created",
      "thread.message.in_progress",
      "thread.message.delta",
      "thread.message.delta",
      "thread.message.completed",
      "thread.run.step.completed",
      "thread.run.completed",
    ]);

    const unknown = await threads.runs.create(thread.id, {
      assistant_id: "asst_nope",
      stream: true,
    })
      .catch((e) => e);
    assert.ok(unknown instanceof NotFoundError);
    assert.match(unknown.message, /No assistant found with id 'asst_nope'\./);

    const noBeta = await fetch(`${fake.baseURL}/threads/${thread.id}/messages`, {
      headers: { authorization: `Bearer ${fake.apiKey}` },
    });
    assert.equal(noBeta.status, 400);
    assert.match((await noBeta.json()).error.message, /You must provide the 'OpenAI-Beta' header/);
  });
});

Deno.test("Assistants API: a cancelled run frees the thread and keeps the partial message", async () => {
  await withFake({}, async (fake, client) => {
    const threads = client.beta.threads;
    const thread = await threads.create();
    await threads.messages.create(thread.id, { role: "user", content: "hello there" });
    const hold = fake.hold();
    const stream = await threads.runs.create(thread.id, {
      assistant_id: "asst_test",
      stream: true,
    });
    const events: string[] = [];
    let runId = "";
    const reading = (async () => {
      for await (const event of stream) {
        events.push(event.event);
        if (event.event === "thread.run.created") runId = event.data.id;
      }
    })();
    await hold.waiting;
    const blocked = await threads.messages.create(thread.id, { role: "user", content: "x" })
      .catch((e) => e);
    assert.ok(blocked instanceof BadRequestError);
    assert.match(blocked.message, new RegExp(`while a run ${runId} is active`));

    const cancelling = await threads.runs.cancel(runId, { thread_id: thread.id });
    assert.equal(cancelling.status, "cancelling");
    await reading;
    assert.deepEqual(events.slice(-3), [
      "thread.message.incomplete",
      "thread.run.step.cancelled",
      "thread.run.cancelled",
    ]);
    hold.release();
    const retrieved = await threads.runs.retrieve(runId, { thread_id: thread.id });
    assert.equal(retrieved.status, "cancelled");
    const added = await threads.messages.create(thread.id, { role: "user", content: "next" });
    assert.equal(added.role, "user");
    const { data } = await threads.messages.list(thread.id, { order: "asc" });
    const statuses = data.map((m) => `${m.role}:${m.status}`);
    assert.deepEqual(statuses, ["user:completed", "assistant:incomplete", "user:completed"]);
  });
});

Deno.test("close() ends a held stream", async () => {
  const fake = await FakeOpenAI.start();
  const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 });
  const hold = fake.hold();
  const stream = await client.responses.create({
    model: "m",
    input: "x",
    stream: true,
    store: false,
  });
  await hold.waiting;
  const types: string[] = [];
  const reading = (async () => {
    for await (const event of stream) types.push(event.type);
  })();
  await fake.close();
  await reading;
  assert.ok(!types.includes("response.completed"));
  assert.equal(types[0], "response.created");
});
