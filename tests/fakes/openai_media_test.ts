/**
 * The fake OpenAI's transcriptions and image/file checks, driven by the real SDK.
 */
import assert from "node:assert/strict";
import OpenAI, { BadRequestError, toFile } from "openai";
import { jpeg, oggOpus, pdf, png } from "../helpers/assets.ts";
import { dataUrl } from "../../src/assistant/parts.ts";
import { withFakeOpenAI } from "../helpers/openai.ts";

const withFake = withFakeOpenAI;

async function rejects400(promise: Promise<unknown>, pattern: RegExp, param?: string | null) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof BadRequestError, String(error));
    assert.match(error.message, pattern);
    if (param !== undefined) assert.equal(error.param, param);
    return true;
  });
}

Deno.test("transcriptions: an Ogg voice note named .ogg is transcribed; the model and file are recorded", async () => {
  await withFake({}, async (fake, client) => {
    fake.audio.transcript = ({ model }) => `heard by ${model}`;
    const file = await toFile(oggOpus(), "voice.ogg", { type: "audio/ogg" });
    const result = await client.audio.transcriptions.create({
      file,
      model: "gpt-4o-mini-transcribe",
    });
    assert.equal(result.text, "heard by gpt-4o-mini-transcribe");
    assert.equal(result.usage?.type, "tokens");
    assert.deepEqual(fake.audio.transcriptions, [{
      model: "gpt-4o-mini-transcribe",
      filename: "voice.ogg",
      contentType: "audio/ogg",
      size: oggOpus().length,
    }]);
    const whisper = await client.audio.transcriptions.create({
      file: await toFile(oggOpus(), "voice.oga", { type: "audio/ogg" }),
      model: "whisper-1",
    });
    assert.deepEqual(whisper.usage, { type: "duration", seconds: 1 });
  });
});

Deno.test("transcriptions: unknown formats, wrong containers and missing fields are refused like OpenAI", async () => {
  await withFake({}, async (fake, client) => {
    const create = (file: Uint8Array, name: string, model = "whisper-1") =>
      toFile(file, name).then((f) => client.audio.transcriptions.create({ file: f, model }));
    await rejects400(
      create(oggOpus(), "voice.opus"),
      /Invalid file format\. Supported formats: \['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav', 'webm'\]/,
    );
    await rejects400(create(await png(), "voice.ogg"), /corrupted or unsupported/, "file");
    await rejects400(create(oggOpus(), "voice.ogg", ""), /'model'/);
    // Not multipart at all.
    const response = await fetch(`${fake.baseURL}/audio/transcriptions`, {
      method: "POST",
      headers: { authorization: `Bearer ${fake.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "whisper-1" }),
    });
    assert.equal(response.status, 400);
    assert.match((await response.json()).error.message, /expected multipart\/form-data/);
    assert.equal(fake.audio.transcriptions.length, 0);
  });
});

Deno.test("transcriptions: an injected failure answers like any route", async () => {
  await withFake({}, async (fake, client) => {
    fake.failNext("/v1/audio/transcriptions", 500);
    const file = await toFile(oggOpus(), "voice.ogg", { type: "audio/ogg" });
    await assert.rejects(
      client.audio.transcriptions.create({ file, model: "whisper-1" }),
      /500/,
    );
  });
});

/** Reads a streamed response's text to its end. */
async function readText(stream: AsyncIterable<OpenAI.Responses.ResponseStreamEvent>) {
  let text = "";
  for await (const event of stream) {
    if (event.type === "response.output_text.delta") text += event.delta;
  }
  return text;
}

/** One user message with these parts, asked as the bot asks (streamed, in `conversation` or stateless). */
const ask = (
  client: OpenAI,
  content: OpenAI.Responses.ResponseInputContent[],
  conversation?: string,
) =>
  client.responses.create({
    model: "gpt-test",
    ...(conversation ? { conversation } : { store: false }),
    input: [{ role: "user", content }],
    stream: true,
  });

Deno.test("responses: input_image and input_file parts are answered and kept in the conversation", async () => {
  const image = dataUrl("image/jpeg", jpeg());
  const file = dataUrl("application/pdf", pdf("Hello"));
  await withFake({}, async (fake, client) => {
    const { id } = await client.conversations.create();
    const content: OpenAI.Responses.ResponseInputContent[] = [
      { type: "input_text", text: "What is this?" },
      { type: "input_image", image_url: image, detail: "auto" },
      { type: "input_file", filename: "a.pdf", file_data: file },
    ];
    assert.equal(await readText(await ask(client, content, id)), "Echo: What is this?");
    const [user] = fake.conversationItems(id) as { role: string; content: unknown[] }[];
    assert.equal(user.role, "user");
    assert.deepEqual(user.content, content, "the parts are read back as sent");
    // Stateless, after a history of plain messages.
    const stream = await client.responses.create({
      model: "gpt-test",
      store: false,
      stream: true,
      input: [
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello" },
        { role: "user", content: [{ type: "input_image", image_url: image, detail: "low" }] },
      ],
    });
    assert.equal(await readText(stream), "Echo: ");
  });
});

Deno.test("responses: bad image and file parts, and parts the bot never sends, are refused", async () => {
  const image = dataUrl("image/jpeg", jpeg());
  const file = dataUrl("application/pdf", pdf("Hello"));
  type Part = OpenAI.Responses.ResponseInputContent;
  const cases: [Part, RegExp, string][] = [
    [
      { type: "input_image", image_url: "data:image/png;base64,@@@", detail: "auto" },
      /invalid base64 encoding/,
      "input[0].content[0].image_url",
    ],
    [
      {
        type: "input_image",
        image_url: dataUrl("image/png", new TextEncoder().encode("not an image")),
        detail: "auto",
      },
      /unsupported image/,
      "input[0].content[0].image_url",
    ],
    [
      { type: "input_image", image_url: dataUrl("image/heic", jpeg()), detail: "auto" },
      /unsupported MIME type 'image\/heic'/,
      "input[0].content[0].image_url",
    ],
    [
      { type: "input_image", image_url: image, detail: "tiny" as "auto" },
      /Invalid value: 'tiny'/,
      "input[0].content[0].detail",
    ],
    [
      {
        type: "input_image",
        image_url: "https://api.telegram.org/file/bot123:abc/photos/file_1.jpg",
        detail: "auto",
      },
      /does not model URLs/,
      "input[0].content[0].image_url",
    ],
    [
      { type: "input_image", file_id: "file-abc", detail: "auto" },
      /does not model 'file_id'/,
      "input[0].content[0].file_id",
    ],
    [
      { type: "input_image", image_url: image, detail: "auto", size: 1 } as Part,
      /Unknown parameter: 'input\[0\]\.content\[0\]\.size'/,
      "input[0].content[0].size",
    ],
    [
      { type: "input_file", file_data: file },
      /Missing required parameter: 'input\[0\]\.content\[0\]\.filename'/,
      "input[0].content[0].filename",
    ],
    [
      { type: "input_file", file_url: "https://example.com/a.pdf" },
      /does not model 'file_url'/,
      "input[0].content[0].file_url",
    ],
    [
      {
        type: "input_file",
        filename: "a.pdf",
        file_data: dataUrl("application/pdf", new TextEncoder().encode("plain")),
      },
      /parsed as a PDF/,
      "input[0].content[0].file_data",
    ],
    [
      { type: "input_text", text: 42 as unknown as string },
      /Invalid type for 'input\[0\]\.content\[0\]\.text': expected a string/,
      "input[0].content[0].text",
    ],
  ];
  await withFake({}, async (_fake, client) => {
    for (const [part, pattern, param] of cases) {
      await rejects400(ask(client, [part]), pattern, param);
    }
  });
  await withFake({ vision: false }, async (_fake, client) => {
    await rejects400(
      ask(client, [{ type: "input_image", image_url: image, detail: "auto" }]),
      /Invalid content type\. input_image is only supported by certain models\./,
      "input[0].content[0].type",
    );
    await rejects400(
      ask(client, [{ type: "input_file", filename: "a.pdf", file_data: file }]),
      /Invalid content type\. input_file is only supported by certain models\./,
      "input[0].content[0].type",
    );
    // Text alone is fine.
    assert.equal(
      await readText(await ask(client, [{ type: "input_text", text: "hi" }])),
      "Echo: hi",
    );
  });
});

Deno.test("chat: image_url parts are checked; a model without vision answers OpenAI's 400", async () => {
  const chat = (client: OpenAI, part: OpenAI.Chat.ChatCompletionContentPart) =>
    client.chat.completions.create({
      model: "gpt-test",
      stream: true,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: [{ type: "text", text: "Look" }, part] },
      ],
    });
  const image = (url: string) => ({ type: "image_url" as const, image_url: { url } });
  await withFake({}, async (_fake, client) => {
    const stream = await chat(client, image(dataUrl("image/png", await png())));
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(text, "Echo: Look");
    await rejects400(
      chat(client, image("data:image/png;base64,")),
      /invalid base64/,
      "messages[1].content[1].image_url.url",
    );
    await rejects400(
      chat(client, image("https://example.com/cat.png")),
      /does not model URLs/,
      "messages[1].content[1].image_url.url",
    );
    await rejects400(
      chat(client, { type: "file", file: { file_data: dataUrl("application/pdf", pdf("x")) } }),
      /does not model 'file' parts/,
      "messages[1].content[1].type",
    );
  });
  await withFake({ vision: false }, async (_fake, client) => {
    await rejects400(
      chat(client, image(dataUrl("image/png", await png()))),
      /^400 Invalid content type\. image_url is only supported by certain models\.$/,
      "messages.[1].content.[1].type",
    );
  });
});

Deno.test("fake transcriptions: a model that does not transcribe is refused, as OpenAI does", async () => {
  await withFake({}, async (_fake, client) => {
    const file = await toFile(oggOpus(), "voice.ogg", { type: "audio/ogg" });
    await assert.rejects(
      client.audio.transcriptions.create({ file, model: "gpt-4o-mini" }),
      (error) => error instanceof BadRequestError && error.param === "model",
    );
  });
});
