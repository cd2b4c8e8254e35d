/**
 * The backends that keep the history in the bot's store (`OPENAI_API=responses` and
 * `chat`), and what the default `conversations` backend gained (compaction, output
 * limit, hashed user fields, the context-full error), against the fake OpenAI server
 * through the real SDK.
 */
import assert from "node:assert/strict";
import { OpenAI } from "openai";
import { getLogger } from "@logtape/logtape";
import { FakeOpenAI, type FakeOpenAIOptions } from "../fakes/openai.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import {
  type Assistant,
  AssistantError,
  NotServedError,
  textInput,
} from "../../src/assistant/assistant.ts";
import { createHistory } from "../../src/assistant/history.ts";
import { createStatelessResponsesAssistant } from "../../src/assistant/stateless_responses.ts";
import { createChatCompletionsAssistant } from "../../src/assistant/chat_completions.ts";
import { createResponsesAssistant } from "../../src/assistant/responses.ts";
import { userFields } from "../../src/assistant/identity.ts";
import { checkServed } from "../../src/assistant/served.ts";
import { drain } from "../helpers/openai.ts";
import { until } from "../helpers/predicates.ts";

type Kind = "responses" | "chat";

interface Setup {
  maxTokens?: number;
  maxOutputTokens?: number;
  official?: boolean;
  salt?: string;
}

async function withStateless(
  kind: Kind,
  fn: (ctx: { fake: FakeOpenAI; store: MemoryStore; assistant: Assistant }) => Promise<void>,
  options: FakeOpenAIOptions = {},
  setup: Setup = {},
) {
  const fake = await FakeOpenAI.start(options);
  const store = new MemoryStore();
  const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 });
  const common = {
    client,
    model: "gpt-test",
    instructions: "Be kind.",
    maxOutputTokens: setup.maxOutputTokens,
    official: setup.official,
    userFields: setup.salt ? userFields(setup.salt) : undefined,
    history: createHistory({ store, maxTokens: setup.maxTokens ?? 10_000, ttlSeconds: 3600 }),
    log: getLogger(["test"]),
  };
  const assistant = kind === "responses"
    ? createStatelessResponsesAssistant(common)
    : createChatCompletionsAssistant(common);
  try {
    await fn({ fake, store, assistant });
  } finally {
    await fake.close();
  }
}

const path = (kind: Kind) => kind === "responses" ? "/v1/responses" : "/v1/chat/completions";

/** The messages a request sent, as [role, text], whichever API. */
function sent(kind: Kind, body: unknown): [string, string][] {
  const b = body as {
    instructions?: string;
    input?: { role: string; content: string }[];
    messages?: { role: string; content: string }[];
  };
  const list = kind === "responses"
    ? [...(b.instructions ? [{ role: "instructions", content: b.instructions }] : []), ...b.input!]
    : b.messages!;
  return list.map((m) => [m.role, m.content]);
}

for (const kind of ["responses", "chat"] as const) {
  Deno.test(`${kind}: the history goes with every turn, and is stored only on commit`, async () => {
    await withStateless(kind, async ({ fake, store, assistant }) => {
      assert.equal(assistant.kind, kind);
      const first = await drain(assistant.ask(7, textInput("cats")));
      assert.equal(first.answer.text, "Echo: cats");
      assert.equal(first.answer.status, "completed");
      assert.ok(first.answer.usage && first.answer.usage.outputTokens > 0);
      assert.deepEqual(await assistant.history(7), [], "nothing stored before the commit");
      await first.answer.commit!("Echo: cats");
      await first.answer.commit!("a second commit does nothing");
      const second = await drain(assistant.ask(7, textInput("dogs")));
      await second.answer.commit!(second.answer.text);
      const requests = fake.requests.filter((r) => r.path === path(kind));
      assert.equal(requests.length, 2);
      assert.deepEqual(sent(kind, requests[1].body), [
        [kind === "responses" ? "instructions" : "system", "Be kind."],
        ["user", "cats"],
        ["assistant", "Echo: cats"],
        ["user", "dogs"],
      ]);
      const body = requests[1].body as Record<string, unknown>;
      if (kind === "responses") {
        assert.equal(body.store, false);
        assert.equal(body.stream, true);
        assert.equal(body.conversation, undefined);
      } else {
        assert.deepEqual(body.stream_options, { include_usage: true });
      }
      // Nothing OpenAI-specific goes to another server.
      assert.equal(body.safety_identifier, undefined);
      assert.equal(body.prompt_cache_key, undefined);
      const history = await assistant.history(7);
      assert.deepEqual(history.map((m) => [m.role, m.text]), [
        ["user", "cats"],
        ["assistant", "Echo: cats"],
        ["user", "dogs"],
        ["assistant", "Echo: dogs"],
      ]);
      assert.ok(history.every((m) => m.at instanceof Date));
      assert.deepEqual((await assistant.history(7, 1)).map((m) => m.text), ["Echo: dogs"]);
      await assistant.reset(7);
      assert.deepEqual(await assistant.history(7), []);
      assert.equal(await store.get("history:7"), null);
    });
  });

  Deno.test(`${kind}: a stopped answer commits what was shown; an empty one nothing`, async () => {
    await withStateless(kind, async ({ fake, assistant }) => {
      // Long enough that the stream is still open when the abort arrives.
      fake.reply = () => Array.from({ length: 500 }, (_, i) => `w${i} `);
      const controller = new AbortController();
      const turn = assistant.ask(9, textInput("long"), controller.signal);
      await turn.next();
      controller.abort();
      const { answer } = await drain(turn);
      assert.equal(answer.status, "aborted");
      assert.ok(answer.text.startsWith("w0 "));
      await answer.commit!(answer.text);
      assert.deepEqual((await assistant.history(9)).map((m) => m.text), ["long", answer.text]);
      await until(() => fake.aborted >= 1, "the upstream stream to be dropped", 10_000);
      assert.equal(fake.aborted, 1, "the upstream stream was closed");

      const stopped = new AbortController();
      stopped.abort();
      const nothing = await drain(assistant.ask(9, textInput("again"), stopped.signal));
      assert.equal(nothing.answer.status, "aborted");
      await nothing.answer.commit!(nothing.answer.text);
      assert.equal((await assistant.history(9)).length, 2, "an empty answer stores no turn");
    }, { tokensPerSecond: 100 });
  });

  Deno.test(`${kind}: the oldest turns are dropped past HISTORY_MAX_TOKENS`, async () => {
    await withStateless(
      kind,
      async ({ fake, assistant }) => {
        for (const word of ["one", "two", "three", "four"]) {
          const { answer } = await drain(assistant.ask(3, textInput(word.padEnd(40, "."))));
          await answer.commit!(answer.text);
        }
        // Each turn is 10 + 12 tokens: 50 keeps the last two.
        const history = await assistant.history(3);
        assert.deepEqual(history.map((m) => m.text.slice(0, 5)), [
          "three",
          "Echo:",
          "four.",
          "Echo:",
        ]);
        const last = fake.requests.filter((r) => r.path === path(kind)).at(-1)!;
        assert.equal(sent(kind, last.body).filter(([role]) => role === "user").length, 3);
      },
      {},
      { maxTokens: 50 },
    );
  });

  Deno.test(`${kind}: <think> reasoning never reaches the answer or the history`, async () => {
    await withStateless(kind, async ({ fake, assistant }) => {
      fake.reply = () => "Four.";
      const { deltas, answer } = await drain(assistant.ask(4, textInput("2+2?")));
      assert.equal(deltas.join(""), "Four.");
      assert.equal(answer.text, "Four.");
      await answer.commit!(answer.text);
      const next = await drain(assistant.ask(4, textInput("and 3+3?")));
      const last = fake.requests.filter((r) => r.path === path(kind)).at(-1)!;
      assert.ok(!JSON.stringify(last.body).includes("think"), "no reasoning is sent back");
      assert.equal(next.answer.text, "Four.");
    }, { reasoning: "think" });
  });

  Deno.test(`${kind}: a context-length error is contextFull, naming HISTORY_MAX_TOKENS`, async () => {
    await withStateless(kind, async ({ assistant }) => {
      await assert.rejects(drain(assistant.ask(5, textInput("x".repeat(400)))), (error) => {
        assert.ok(error instanceof AssistantError);
        assert.equal(error.kind, "contextFull");
        assert.match(error.message, /HISTORY_MAX_TOKENS/);
        return true;
      });
    }, { contextWindow: 50 });
  });

  Deno.test(`${kind}: MAX_OUTPUT_TOKENS cuts the answer, status incomplete`, async () => {
    await withStateless(
      kind,
      async ({ fake, assistant }) => {
        fake.reply = () => "word ".repeat(100);
        const { answer } = await drain(assistant.ask(6, textInput("talk")));
        assert.equal(answer.status, "incomplete");
        assert.equal(answer.text.length, 64);
        const body = fake.requests.find((r) => r.path === path(kind))!.body as Record<
          string,
          unknown
        >;
        const field = kind === "responses" ? "max_output_tokens" : "max_tokens";
        assert.equal(body[field], 16);
      },
      {},
      { maxOutputTokens: 16 },
    );
  });

  Deno.test(`${kind}: with OpenAI itself, hashed user fields and its own limit field`, async () => {
    await withStateless(
      kind,
      async ({ fake, assistant }) => {
        await drain(assistant.ask(123456, textInput("hi")));
        const body = fake.requests.find((r) => r.path === path(kind))!.body as Record<
          string,
          unknown
        >;
        const expected = await userFields("salt")(123456);
        assert.equal(body.safety_identifier, expected.safety_identifier);
        assert.equal(body.prompt_cache_key, expected.prompt_cache_key);
        assert.ok(!JSON.stringify(body).includes("123456"), "never the raw user id");
        if (kind === "chat") assert.equal(body.max_completion_tokens, 100);
        else assert.deepEqual(body.stream_options, { include_obfuscation: false });
      },
      {},
      { official: true, salt: "salt", maxOutputTokens: 100 },
    );
  });
}

Deno.test("chat: reasoning_content deltas are never answer text", async () => {
  await withStateless("chat", async ({ fake, assistant }) => {
    fake.reply = () => "Four.";
    const { deltas, answer } = await drain(assistant.ask(4, textInput("2+2?")));
    assert.deepEqual(deltas, ["Four."]);
    assert.equal(answer.text, "Four.");
    assert.ok(answer.usage!.outputTokens > 2, "reasoning tokens are still counted");
  }, { reasoning: "field" });
});

Deno.test("user fields: a salted HMAC per user, stable, different per salt", async () => {
  const a = await userFields("one")(42);
  assert.match(a.safety_identifier, /^[0-9a-f]{64}$/);
  assert.ok(a.prompt_cache_key.length <= 64);
  assert.deepEqual(await userFields("one")(42), a);
  assert.notEqual((await userFields("one")(43)).safety_identifier, a.safety_identifier);
  assert.notEqual((await userFields("two")(42)).safety_identifier, a.safety_identifier);
});

Deno.test("conversations: compaction, output limit and user fields on every request", async () => {
  const fake = await FakeOpenAI.start({ contextWindow: 200 });
  try {
    const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 });
    const assistant = createResponsesAssistant({
      client,
      store: new MemoryStore(),
      model: "gpt-test",
      compactTokens: 150,
      maxOutputTokens: 64,
      userFields: userFields("salt"),
    });
    assert.equal(assistant.kind, "conversations");
    fake.reply = () => "y".repeat(200);
    // Twenty turns of 100 tokens each through a 200-token window.
    for (let i = 0; i < 20; i++) {
      const { answer } = await drain(assistant.ask(1, textInput("x".repeat(200))));
      assert.equal(answer.status, "completed");
    }
    const body = fake.requests.filter((r) => r.path === "/v1/responses").at(-1)!.body as Record<
      string,
      unknown
    >;
    assert.deepEqual(body.context_management, [{ type: "compaction", compact_threshold: 150 }]);
    assert.equal(body.max_output_tokens, 64);
    assert.equal(body.safety_identifier, (await userFields("salt")(1)).safety_identifier);
    // The compaction items are not messages: history shows the messages only.
    const history = await assistant.history(1, 4);
    assert.deepEqual(history.map((m) => m.role), ["user", "assistant", "user", "assistant"]);
  } finally {
    await fake.close();
  }
});

Deno.test("conversations: without compaction the window fills up: contextFull", async () => {
  const fake = await FakeOpenAI.start({ contextWindow: 200 });
  try {
    const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 });
    const assistant = createResponsesAssistant({
      client,
      store: new MemoryStore(),
      model: "gpt-test",
    });
    fake.reply = () => "y".repeat(200);
    await drain(assistant.ask(1, textInput("x".repeat(200))));
    await drain(assistant.ask(1, textInput("x".repeat(200))));
    await assert.rejects(drain(assistant.ask(1, textInput("x".repeat(200)))), (error) => {
      assert.ok(error instanceof AssistantError);
      assert.equal(error.kind, "contextFull");
      assert.match(error.message, /CONTEXT_COMPACT_TOKENS/);
      return true;
    });
  } finally {
    await fake.close();
  }
});

Deno.test("conversations: <think> is stripped from answers and from history", async () => {
  const fake = await FakeOpenAI.start({ reasoning: "think" });
  try {
    const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 });
    const assistant = createResponsesAssistant({ client, store: new MemoryStore(), model: "m" });
    const { answer } = await drain(assistant.ask(1, textInput("hi")));
    assert.equal(answer.text, "Echo: hi");
    assert.deepEqual((await assistant.history(1)).map((m) => m.text), ["hi", "Echo: hi"]);
  } finally {
    await fake.close();
  }
});

Deno.test("checkServed: each API against a server that has it, and one that lacks it", async () => {
  const full = await FakeOpenAI.start();
  const compatible = await FakeOpenAI.start({ lacks: ["conversations"] });
  const chatOnly = await FakeOpenAI.start({ lacks: ["conversations", "responses"] });
  try {
    const client = (fake: FakeOpenAI) =>
      new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 });
    for (const api of ["conversations", "responses", "chat"] as const) {
      await checkServed(client(full), api);
    }
    await assert.rejects(checkServed(client(compatible), "conversations"), (error) => {
      assert.ok(error instanceof NotServedError);
      assert.match(
        error.message,
        /^OPENAI_API=conversations: http:\/\/127\.0\.0\.1:\d+\/v1 does not serve the Conversations API \(GET \/conversations\/conv_probe answered 404\): set OPENAI_API=responses or chat$/,
      );
      return true;
    });
    await checkServed(client(compatible), "responses");
    await assert.rejects(checkServed(client(chatOnly), "responses"), /set OPENAI_API=chat/);
    await checkServed(client(chatOnly), "chat");
    // A wrong key is said at once; an unreachable server is not a verdict.
    const wrongKey = new OpenAI({ apiKey: "sk-wrong-key", baseURL: full.baseURL, maxRetries: 0 });
    await assert.rejects(checkServed(wrongKey, "chat"), (error) => {
      assert.ok(error instanceof NotServedError);
      assert.match(error.message, /OPENAI_API_KEY/);
      assert.ok(!error.message.includes("sk-wrong-key"));
      return true;
    });
    full.failNext("/v1/chat/completions", 503);
    await assert.rejects(checkServed(client(full), "chat"), AssistantError);
  } finally {
    await Promise.all([full.close(), compatible.close(), chatOnly.close()]);
  }
});
