/** Both assistant backends against the fake OpenAI server, through the real SDK. */
import assert from "node:assert/strict";
import { OpenAI } from "openai";
import { FakeOpenAI, type FakeOpenAIOptions } from "../fakes/openai.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { createResponsesAssistant } from "../../src/assistant/responses.ts";
import { createAssistantsAssistant } from "../../src/assistant/assistants.ts";
import { type Assistant, AssistantError, textInput } from "../../src/assistant/assistant.ts";
import { drain } from "../helpers/openai.ts";
import { until } from "../helpers/predicates.ts";

async function withBackend(
  kind: "responses" | "assistants",
  fn: (ctx: { fake: FakeOpenAI; store: MemoryStore; assistant: Assistant }) => Promise<void>,
  options: FakeOpenAIOptions = {},
) {
  const fake = await FakeOpenAI.start(options);
  const store = new MemoryStore();
  const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 1 });
  const assistant = kind === "responses"
    ? createResponsesAssistant({ client, store, model: "gpt-test", instructions: "Be kind." })
    : createAssistantsAssistant({ client, store, assistantId: "asst_test" });
  try {
    await fn({ fake, store, assistant });
  } finally {
    await fake.close();
  }
}

for (const kind of ["responses", "assistants"] as const) {
  Deno.test(`${kind}: streams deltas, returns the text and usage, keeps one conversation`, async () => {
    await withBackend(kind, async ({ fake, store, assistant }) => {
      fake.reply = (input) => ["Hello ", "about ", input];
      const { deltas, answer } = await drain(assistant.ask(7, textInput("cats")));
      assert.deepEqual(deltas, ["Hello ", "about ", "cats"]);
      assert.equal(answer.text, "Hello about cats");
      assert.equal(answer.status, "completed");
      assert.ok(answer.usage && answer.usage.outputTokens > 0);
      const id = await store.get("thread_id:7");
      assert.match(id!, kind === "responses" ? /^conv_/ : /^thread_/);
      await drain(assistant.ask(7, textInput("dogs")));
      assert.equal(await store.get("thread_id:7"), id, "the same conversation continues");
      const history = await assistant.history(7);
      assert.deepEqual(history.map((m) => [m.role, m.text]), [
        ["user", "cats"],
        ["assistant", "Hello about cats"],
        ["user", "dogs"],
        ["assistant", "Hello about dogs"],
      ]);
      assert.deepEqual((await assistant.history(7, 2)).map((m) => m.text), [
        "dogs",
        "Hello about dogs",
      ]);
      await assistant.reset(7);
      assert.equal(await store.get("thread_id:7"), null);
      assert.deepEqual(await assistant.history(7), []);
    });
  });

  Deno.test(`${kind}: an id of the other backend starts a new conversation`, async () => {
    await withBackend(kind, async ({ store, assistant }) => {
      await store.set("thread_id:8", kind === "responses" ? "thread_abc123" : "conv_abc123");
      const { answer } = await drain(assistant.ask(8, textInput("hi")));
      assert.equal(answer.text, "Echo: hi");
      assert.match(
        await store.get("thread_id:8") ?? "",
        kind === "responses" ? /^conv_/ : /^thread_/,
      );
    });
  });

  Deno.test(`${kind}: aborting keeps what was generated and stops the upstream stream`, async () => {
    await withBackend(kind, async ({ fake, assistant }) => {
      // Long enough that the stream is still open when the abort arrives.
      fake.reply = () => Array.from({ length: 500 }, (_, i) => `w${i} `);
      const controller = new AbortController();
      const turn = assistant.ask(9, textInput("long"), controller.signal);
      const first = await turn.next();
      assert.equal(first.done, false);
      controller.abort();
      const { answer } = await drain(turn);
      assert.equal(answer.status, "aborted");
      assert.ok(answer.text.startsWith("w0 "));
      assert.ok(answer.text.length < 50 * 3, "the rest was not read");
      // The fake notices the closed connection a moment later.
      await until(() => fake.aborted >= 1, "the upstream stream to be dropped", 10_000);
      assert.equal(fake.aborted, 1);
      if (kind === "assistants") {
        await until(
          () => fake.requests.some((r) => r.path.endsWith("/cancel")),
          "the run to be cancelled",
          10_000,
        );
        assert.ok(fake.requests.some((r) => r.path.endsWith("/cancel")), "the run is cancelled");
      }
    }, { tokensPerSecond: 100 });
  });

  Deno.test(`${kind}: a lasting 500 becomes an 'unavailable' AssistantError`, async () => {
    await withBackend(kind, async ({ fake, assistant }) => {
      fake.failNext(/./, 500, 10);
      await assert.rejects(drain(assistant.ask(10, textInput("x"))), (error) => {
        assert.ok(error instanceof AssistantError);
        assert.equal(error.kind, "unavailable");
        return true;
      });
    });
  });
}

Deno.test("responses: a conversation deleted at OpenAI is replaced once", async () => {
  await withBackend("responses", async ({ store, assistant }) => {
    await store.set("thread_id:11", "conv_doesnotexist");
    const { answer } = await drain(assistant.ask(11, textInput("hi")));
    assert.equal(answer.text, "Echo: hi");
    assert.notEqual(await store.get("thread_id:11"), "conv_doesnotexist");
  });
});

Deno.test("assistants: a run left active by a crash is cancelled, then the message goes through", async () => {
  const fake = await FakeOpenAI.start({ tokensPerSecond: 50 });
  try {
    const store = new MemoryStore();
    const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 1 });
    const assistant = createAssistantsAssistant({ client, store, assistantId: "asst_test" });
    fake.reply = (input) => input === "orphan" ? Array(500).fill("x ") : [`Echo: ${input}`];
    await drain(assistant.ask(12, textInput("first")));
    const threadId = (await store.get("thread_id:12"))!;
    // A run that a crashed process started and never finished (10 s of output left).
    await client.beta.threads.messages.create(threadId, { role: "user", content: "orphan" });
    const orphan = await client.beta.threads.runs.create(threadId, {
      assistant_id: "asst_test",
      stream: true,
    });
    const reader = orphan[Symbol.asyncIterator]();
    await reader.next();
    const { answer } = await drain(assistant.ask(12, textInput("second")));
    assert.equal(answer.text, "Echo: second");
    await reader.return?.();
  } finally {
    await fake.close();
  }
});

Deno.test("responses: a conversation still locked by a stopped answer is waited out", async () => {
  await withBackend("responses", async ({ fake, assistant }) => {
    await drain(assistant.ask(13, textInput("first")));
    fake.failNext("/v1/responses", 400, 1, {
      error: {
        message:
          "Another process is currently operating on this conversation. Please retry in a few seconds.",
        type: "invalid_request_error",
        param: "conversation",
        code: "conversation_locked",
      },
    });
    const { answer } = await drain(assistant.ask(13, textInput("second")));
    assert.equal(answer.text, "Echo: second");
    assert.equal(fake.requests.filter((r) => r.path === "/v1/responses").length, 3);
  });
});

Deno.test("responses: a conversation OpenAI lost starts a new one; an unknown model does not cost it", async () => {
  await withBackend("responses", async ({ fake, store, assistant }) => {
    await drain(assistant.ask(11, textInput("hi")));
    const id = await store.get("thread_id:11");
    fake.failNext("/v1/responses", 404, 1, {
      error: { message: "The model `gpt-gone` does not exist", code: "model_not_found" },
    });
    await assert.rejects(drain(assistant.ask(11, textInput("again"))), AssistantError);
    assert.equal(await store.get("thread_id:11"), id, "the conversation is kept");
    fake.failNext("/v1/responses", 404, 1, {
      error: { message: `Conversation with id '${id}' not found.`, param: "conversation" },
    });
    assert.equal(
      (await drain(assistant.ask(11, textInput("once more")))).answer.text,
      "Echo: once more",
    );
    assert.notEqual(await store.get("thread_id:11"), id, "a new conversation");
  });
});
