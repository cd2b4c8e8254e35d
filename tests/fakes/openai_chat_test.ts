/**
 * The fake OpenAI's Chat Completions, context window, compaction and compatible-server
 * options, driven by the real SDK over loopback HTTP.
 */
import assert from "node:assert/strict";
import OpenAI, { BadRequestError, NotFoundError } from "openai";
import { REASONING_DELTAS } from "./openai_chat.ts";
import { withFakeOpenAI } from "../helpers/openai.ts";

const withFake = withFakeOpenAI;

async function rejects400(promise: Promise<unknown>, param: string | null, code: string | null) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof BadRequestError, String(error));
    assert.equal(error.param, param);
    assert.equal(error.code, code);
    return true;
  });
}

Deno.test("chat: streamed chunks shaped like OpenAI's, usage last with include_usage", async () => {
  await withFake({}, async (fake, client) => {
    fake.reply = (input) => ["Hi ", "there, ", input];
    const stream = await client.chat.completions.create({
      model: "gpt-test",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "one" },
        { role: "assistant", content: "Hi there, one" },
        { role: "user", content: "two" },
      ],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1);
    assert.match([...ids][0], /^chatcmpl-[A-Za-z0-9]{29}$/);
    for (const c of chunks) {
      assert.equal(c.object, "chat.completion.chunk");
      assert.equal(c.model, "gpt-test");
      assert.ok("usage" in c, "every chunk has usage (null until the last)");
      assert.equal(typeof c.obfuscation, "string");
    }
    assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "", refusal: null });
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    assert.equal(text, "Hi there, two", "the model answers the last user message");
    const finish = chunks.at(-2)!.choices[0];
    assert.deepEqual(finish.delta, {});
    assert.equal(finish.finish_reason, "stop");
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage!.completion_tokens, Math.ceil("Hi there, two".length / 4));
    assert.ok(last.usage!.prompt_tokens > 0);
    assert.equal(chunks.slice(0, -1).every((c) => c.usage === null), true);
    // The wire: data lines only, [DONE] at the end (as OpenAI sends Chat Completions).
    const raw = await fetch(`${fake.baseURL}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${fake.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "m",
        messages: [{ role: "user", content: "x" }],
        stream: true,
        stream_options: { include_obfuscation: false },
      }),
    }).then((r) => r.text());
    assert.ok(!raw.includes("event:"));
    assert.ok(raw.endsWith("data: [DONE]\n\n"));
    assert.ok(!raw.includes('"usage"'), "no usage without include_usage");
    assert.ok(!raw.includes("obfuscation"));
  });
});

Deno.test("chat: max tokens cut the answer with finish_reason length", async () => {
  await withFake({}, async (_fake, client) => {
    for (const limit of [{ max_completion_tokens: 3 }, { max_tokens: 3 }]) {
      const stream = await client.chat.completions.create({
        model: "m",
        messages: [{ role: "user", content: "a fairly long question to echo back" }],
        stream: true,
        ...limit,
      });
      let text = "";
      let finish: string | null = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      assert.equal(finish, "length");
      assert.equal(text.length, 12);
    }
  });
});

Deno.test("chat: requests OpenAI refuses are refused", async () => {
  await withFake({}, async (_fake, client) => {
    const messages = [{ role: "user" as const, content: "x" }];
    await rejects400(
      client.chat.completions.create(
        { model: "m", messages, stream: true, temprature: 1 } as never,
      ),
      "temprature",
      "unknown_parameter",
    );
    await rejects400(client.post("/chat/completions", { body: {} }), null, null);
    await rejects400(
      client.chat.completions.create({ model: "m", messages: [], stream: true }),
      "messages",
      "empty_array",
    );
    await rejects400(
      client.chat.completions.create({
        model: "m",
        messages: [{ role: "user", content: "x", extra: 1 } as never],
        stream: true,
      }),
      "messages[0].extra",
      "unknown_parameter",
    );
    await rejects400(
      client.chat.completions.create({
        model: "m",
        messages: [{ role: "assistant", content: [{ type: "text", text: "x" }] }],
        stream: true,
      }),
      "messages[0].content",
      "invalid_value",
    );
    await rejects400(
      client.chat.completions.create({
        model: "m",
        messages: [{
          role: "user",
          content: [{ type: "input_audio", input_audio: { data: "AAAA", format: "wav" } }],
        }],
        stream: true,
      }),
      "messages[0].content[0].type",
      "invalid_value",
    );
    await rejects400(
      client.chat.completions.create({
        model: "m",
        messages: [{ role: "developer", content: "x" }],
        stream: true,
      }),
      "messages[0].role",
      "invalid_value",
    );
    await rejects400(
      client.chat.completions.create({
        model: "m",
        messages,
        stream: true,
        stream_options: { include_usage: "yes" } as never,
      }),
      "stream_options.include_usage",
      "invalid_type",
    );
    await rejects400(
      client.chat.completions.create({
        model: "m",
        messages,
        stream: true,
        prompt_cache_key: "k".repeat(65),
      }),
      "prompt_cache_key",
      "string_above_max_length",
    );
    await rejects400(
      client.chat.completions.create({ model: "m", messages, stream: true, max_tokens: 0 }),
      "max_tokens",
      "integer_below_min_value",
    );
  });
});

Deno.test("chat: an input past the context window is context_length_exceeded", async () => {
  await withFake({ contextWindow: 10 }, async (_fake, client) => {
    await assert.rejects(
      client.chat.completions.create({
        model: "m",
        messages: [{ role: "user", content: "x".repeat(41) }],
        stream: true,
      }),
      (error) => {
        assert.ok(error instanceof BadRequestError);
        assert.equal(error.code, "context_length_exceeded");
        assert.equal(error.param, "messages");
        assert.match(error.message, /maximum context length is 10 tokens.*resulted in 11 tokens/);
        return true;
      },
    );
  });
});

Deno.test("chat: a reasoning server sends reasoning_content before the answer", async () => {
  await withFake({ reasoning: "field" }, async (fake, client) => {
    fake.reply = () => "Four.";
    const stream = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "2+2?" }],
      stream: true,
    });
    const reasoning: string[] = [];
    let content = "";
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string };
      if (delta?.reasoning_content) reasoning.push(delta.reasoning_content);
      content += delta?.content ?? "";
    }
    assert.deepEqual(reasoning, REASONING_DELTAS);
    assert.equal(content, "Four.");
  });
});

Deno.test("reasoning 'think': the reasoning is in the answer text, tags split", async () => {
  await withFake({ reasoning: "think" }, async (fake, client) => {
    fake.reply = () => "Four.";
    const stream = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "2+2?" }],
      stream: true,
    });
    const deltas: string[] = [];
    for await (const chunk of stream) deltas.push(chunk.choices[0]?.delta.content ?? "");
    const text = deltas.join("");
    assert.equal(text, `<think>${REASONING_DELTAS.join("")}</think>\n\nFour.`);
    assert.ok(!deltas.includes("<think>"), "the opening tag is split across deltas");
  });
});

Deno.test("responses: stateless input array with store false", async () => {
  await withFake({}, async (_fake, client) => {
    const stream = await client.responses.create({
      model: "m",
      instructions: "Be kind.",
      input: [
        { role: "user", content: "first" },
        { role: "assistant", content: "Echo: first" },
        { role: "user", content: "second" },
      ],
      store: false,
      stream: true,
    });
    let text = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed") completed = event.response;
    }
    assert.equal(text, "Echo: second");
    assert.equal((completed as unknown as { store: boolean }).store, false);
    // Without a conversation the bot never lets OpenAI store a response.
    await assert.rejects(
      client.responses.create({ model: "m", input: "x", stream: true }),
      /does not model stored responses/,
    );
  });
});

Deno.test("responses: compaction past compact_threshold, then the context starts there", async () => {
  await withFake({ contextWindow: 200 }, async (fake, client) => {
    fake.reply = () => "y".repeat(200); // 50 tokens an answer
    const conversation = await client.conversations.create();
    const ask = async () => {
      const stream = await client.responses.create({
        model: "m",
        conversation: conversation.id,
        input: "x".repeat(200), // 50 tokens a question
        stream: true,
        context_management: [{ type: "compaction", compact_threshold: 150 }],
      });
      const added: string[] = [];
      let done: OpenAI.Responses.Response | undefined;
      for await (const event of stream) {
        if (event.type === "response.output_item.added") added.push(event.item.type);
        if (event.type === "response.completed") done = event.response;
      }
      return { added, done: done! };
    };
    // Turns render 50, 150, 250 tokens: the third passes the threshold and compacts.
    assert.deepEqual((await ask()).added, ["message"]);
    assert.deepEqual((await ask()).added, ["message"]);
    const third = await ask();
    assert.deepEqual(third.added, ["compaction", "message"]);
    const compaction = third.done.output[0] as OpenAI.Responses.ResponseCompactionItem;
    assert.equal(compaction.type, "compaction");
    assert.match(compaction.id, /^cmp_/);
    assert.ok(compaction.encrypted_content.length > 0);
    assert.equal(third.done.usage!.input_tokens, 50, "only the new input after compaction");
    // Many more turns never pass the 200-token window: each renders from the last compaction.
    for (let i = 0; i < 10; i++) await ask();
    const items = fake.conversationItems(conversation.id) as { type: string }[];
    assert.equal(items.filter((i) => i.type === "message").length, 26, "items stay listable");
    assert.ok(items.filter((i) => i.type === "compaction").length >= 4);
  });
});

Deno.test("responses: without compaction the window gives context_length_exceeded", async () => {
  await withFake({ contextWindow: 120 }, async (_fake, client) => {
    const conversation = await client.conversations.create();
    const ask = () =>
      client.responses.create({
        model: "m",
        conversation: conversation.id,
        input: "x".repeat(200),
        stream: true,
      }).then(async (stream) => {
        for await (const _ of stream) { /* drain */ }
      });
    await ask();
    await assert.rejects(ask(), (error) => {
      assert.ok(error instanceof BadRequestError);
      assert.equal(error.code, "context_length_exceeded");
      assert.equal(error.param, "input");
      return true;
    });
  });
});

Deno.test("responses: max_output_tokens ends the answer as incomplete", async () => {
  await withFake({}, async (fake, client) => {
    fake.reply = () => "word ".repeat(100);
    const stream = await client.responses.create({
      model: "m",
      input: "x",
      stream: true,
      max_output_tokens: 16,
      store: false,
    });
    let text = "";
    let incomplete: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.incomplete") incomplete = event.response;
    }
    assert.equal(text.length, 64);
    assert.equal(incomplete!.status, "incomplete");
    assert.deepEqual(incomplete!.incomplete_details, { reason: "max_output_tokens" });
    const asked = { model: "m", input: "x", stream: true, store: false } as const;
    await rejects400(
      client.responses.create({ ...asked, max_output_tokens: 8 }),
      "max_output_tokens",
      "integer_below_min_value",
    );
    await rejects400(
      client.responses.create({ ...asked, context_management: [{ type: "truncate" }] } as never),
      "context_management[0].type",
      "invalid_value",
    );
    await rejects400(
      client.responses.create({ ...asked, safety_identifier: "s".repeat(129) }),
      "safety_identifier",
      "string_above_max_length",
    );
  });
});

Deno.test("lacks: a compatible server without Conversations answers 404 Invalid URL", async () => {
  await withFake({ lacks: ["conversations", "responses"] }, async (_fake, client) => {
    await assert.rejects(client.conversations.retrieve("conv_probe"), (error) => {
      assert.ok(error instanceof NotFoundError);
      assert.match(error.message, /Invalid URL \(GET \/v1\/conversations\/conv_probe\)/);
      return true;
    });
    await assert.rejects(client.post("/responses", { body: {} }), NotFoundError);
    // Chat Completions are still served.
    await rejects400(client.post("/chat/completions", { body: {} }), null, null);
  });
});

Deno.test("fake chat: a reasoning model refuses max_tokens; max_completion_tokens is taken", async () => {
  await withFake({}, async (_fake, client) => {
    const messages = [{ role: "user" as const, content: "hi" }];
    await assert.rejects(
      client.chat.completions.create({
        model: "gpt-5-mini",
        messages,
        max_tokens: 50,
        stream: true,
      }),
      (error) => error instanceof BadRequestError && error.code === "unsupported_parameter",
    );
    const stream = await client.chat.completions.create({
      model: "gpt-5-mini",
      messages,
      max_completion_tokens: 50,
      stream: true,
    });
    for await (const _ of stream) { /* read to the end */ }
  });
});
