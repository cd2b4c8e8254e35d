/**
 * End-to-end: what people actually send. Voice notes are downloaded, transcribed and
 * answered with the transcript quoted; photos, albums and documents go to the model as
 * base64 parts (never a Telegram file URL); limits refuse before anything is
 * downloaded; failures get a clear text; /history shows media turns as readable lines
 * on every backend; a crash mid-album answers the album once after the restart.
 */
import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { type Stack, withStack } from "../helpers/stack.ts";
import { spawnBot } from "../helpers/bot_process.ts";
import {
  sendAlbum,
  sendDocument,
  sendPhoto,
  sendVideoNote,
  sendVoice,
} from "../fakes/telegram_files.ts";
import { jpeg, oggOpus, pdf, png } from "../helpers/assets.ts";
import {
  markdownOf,
  modelRequests,
  repliedTo,
  saysTo,
  sentTo,
  textOf,
} from "../helpers/predicates.ts";
import { dataUrl } from "../../src/assistant/parts.ts";
import { KvStore } from "../../src/store/kv.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));
const MB = 1024 * 1024;

type Json = Record<string, unknown>;

/** The bodies of the model's requests on this path (not the start-up check). */
const modelBodies = (stack: Stack, path: string) =>
  modelRequests(stack.openai, path).map((r) => r.body as Json);

/** The user content of a Responses request's last input item. */
function lastInput(body: Json): Json[] {
  const input = body.input as Json[] | string;
  assert.ok(Array.isArray(input), `input is content parts: ${JSON.stringify(input)}`);
  return input.at(-1)!.content as Json[];
}

/** Sends a text and waits for its answer: every earlier update of the user is done then. */
async function roundTrip(stack: Stack, user: { id: number }, word: string): Promise<void> {
  stack.telegram.sendText(stack.subscriber(user.id), word);
  await stack.telegram.waitForCall("sendRichMessage", saysTo(user.id, new RegExp(`Echo: ${word}`)));
}

/** Nothing in any request to OpenAI carries the bot token or a Telegram file URL. */
function assertNoToken(stack: Stack): void {
  const all = JSON.stringify(stack.openai.requests);
  const secret = stack.telegram.token.split(":")[1];
  assert.ok(!all.includes(secret), "the bot token reached OpenAI");
  assert.ok(!all.includes("/file/bot"), "a Telegram file URL reached OpenAI");
}

Deno.test("voice: a note is downloaded, transcribed and answered with its transcript quoted", () =>
  withStack({}, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    sendVoice(telegram, user, oggOpus(), { duration: 4 });
    const final = await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo:/));
    assert.equal(
      markdownOf(final),
      "> 🎤 What is the weather like today?\n\n" +
        "Echo: [voice 0:04] What is the weather like today?",
    );
    // The draft showed the transcript before the answer came.
    assert.ok(
      telegram.chatDrafts(user.id).some((d) => d.text.startsWith("🎤 What is the weather")),
      JSON.stringify(telegram.chatDrafts(user.id)),
    );
    assert.deepEqual(openai.audio.transcriptions, [{
      model: "gpt-4o-mini-transcribe",
      filename: "voice.ogg",
      contentType: "audio/ogg",
      size: oggOpus().length,
    }]);
    assert.equal(telegram.callsTo("getFile").length, 1);
    assert.deepEqual(telegram.files.downloads, ["voice/file_1.oga"]);
    const [request] = modelBodies(stack, "/v1/responses");
    assert.equal(request.input, "[voice 0:04] What is the weather like today?");
    assertNoToken(stack);

    telegram.sendText(user, "/usage");
    const usage = await telegram.waitForCall("sendMessage", saysTo(user.id, /usage today/));
    assert.match(textOf(usage), /voice and audio: 0:04\n• files: 1/);
  }));

Deno.test("voice: a round video note is transcribed from its MP4; OPENAI_TRANSCRIBE_MODEL is used", () =>
  withStack({ env: { OPENAI_TRANSCRIBE_MODEL: "whisper-1" } }, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    const mp4 = new Uint8Array([0, 0, 0, 24, ...new TextEncoder().encode("ftypisom"), 0, 0, 2, 0]);
    openai.audio.transcript = () => "Hi from a circle";
    sendVideoNote(telegram, user, mp4, { duration: 9 });
    const final = await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo:/));
    assert.match(markdownOf(final), /^> 🎤 Hi from a circle\n\nEcho: \[video note 0:09\] Hi/);
    assert.deepEqual(
      openai.audio.transcriptions.map((t) => [t.model, t.filename, t.contentType]),
      [["whisper-1", "video_note.mp4", "video/mp4"]],
    );
  }));

Deno.test("voice: a failed or empty transcription gets a clear text and asks no model", () =>
  withStack({}, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    openai.failNext("/v1/audio/transcriptions", 400, 1, {
      error: { message: "Audio file might be corrupted or unsupported", param: "file" },
    });
    sendVoice(telegram, user, oggOpus(), { duration: 3 });
    await telegram.waitForCall("sendMessage", saysTo(user.id, /couldn't transcribe your voice/));
    openai.audio.transcript = () => "  ";
    sendVoice(telegram, stack.subscriber(user.id, "ru"), oggOpus(), { duration: 3 });
    await telegram.waitForCall("sendMessage", saysTo(user.id, /не удалось разобрать ни слова/i));
    assert.equal(modelBodies(stack, "/v1/responses").length, 0);
    await stack.bot.waitForOutput(/transcribing voice\.ogg with gpt-4o-mini-transcribe/);
  }));

Deno.test("voice: LIMIT_AUDIO_SECONDS_PER_DAY refuses a note that would pass it, before downloading", () =>
  withStack({ env: { LIMIT_AUDIO_SECONDS_PER_DAY: "10" } }, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    sendVoice(telegram, user, oggOpus(), { duration: 8 });
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo:/));
    sendVoice(telegram, user, oggOpus(), { duration: 5 });
    const refusal = await telegram.waitForCall("sendMessage", saysTo(user.id, /limited to/));
    assert.match(textOf(refusal), /limited to 0:10 a day.*used today: 0:08/);
    assert.equal(telegram.callsTo("getFile").length, 1, "the second note was not downloaded");
    assert.equal(stack.openai.audio.transcriptions.length, 1);
    telegram.sendText(user, "/usage");
    const usage = await telegram.waitForCall("sendMessage", saysTo(user.id, /usage today/));
    assert.match(textOf(usage), /voice and audio: 0:08 of 0:10/);
  }));

Deno.test("photo: the largest size goes as base64 with its caption; no token reaches OpenAI", () =>
  withStack({}, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    const full = jpeg();
    sendPhoto(telegram, user, full, { caption: "What is this?", thumbnail: await png() });
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /^Echo: What is this\?$/));
    const [request] = modelBodies(stack, "/v1/responses");
    assert.deepEqual(lastInput(request), [
      { type: "input_text", text: "What is this?" },
      { type: "input_image", image_url: dataUrl("image/jpeg", full), detail: "auto" },
    ]);
    assert.deepEqual(telegram.files.downloads, ["photos/file_2.jpg"], "the full size only");
    assertNoToken(stack);
    // An image sent as a file goes the same way, typed from its bytes.
    sendDocument(telegram, user, await png(), { file_name: "chart.png", mime_type: "image/png" });
    await roundTrip(stack, user, "after");
    const second = modelBodies(stack, "/v1/responses")[1];
    assert.equal((lastInput(second)[0] as Json).image_url, dataUrl("image/png", await png()));
    // /history on Conversations reads the image parts back as markers.
    telegram.sendText(user, "/history");
    const history = await telegram.waitForCall("sendMessage", saysTo(user.id, /Last messages/));
    assert.match(textOf(history), /You:<\/b> \[photo\] What is this\?/);
    assert.match(textOf(history), /You:<\/b> \[photo\]\n/);
  }));

Deno.test("album: three photos sent together are answered once, with all three images", () =>
  withStack({}, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    const photos = [jpeg(), await png(2, 10), await png(3, 200)];
    const parts = sendAlbum(telegram, user, photos, { caption: "Compare them" });
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /^Echo: Compare them$/));
    await roundTrip(stack, user, "next");
    const calls = modelBodies(stack, "/v1/responses");
    assert.equal(calls.length, 2, "one request for the album, one for the text");
    const images = lastInput(calls[0]).filter((p) => p.type === "input_image");
    assert.deepEqual(
      images.map((p) => p.image_url),
      [
        dataUrl("image/jpeg", photos[0]),
        dataUrl("image/png", photos[1]),
        dataUrl("image/png", photos[2]),
      ],
    );
    const answers = telegram.callsTo("sendRichMessage").filter((c) => c.ok && sentTo(user.id)(c));
    assert.equal(answers.length, 2);
    // The album's answer replies to its first part.
    assert.equal(
      repliedTo(answers[0]),
      parts[0].message.message_id,
    );
    assert.equal(
      telegram.callsTo("sendMessage").filter(sentTo(user.id)).length,
      0,
    );
    assertNoToken(stack);
  }));

Deno.test("documents: a PDF goes as input_file on Conversations and as extracted text on chat", async () => {
  const report = pdf("Quarterly revenue rose 12 percent");
  await withStack({}, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    sendDocument(telegram, user, report, {
      file_name: "report.pdf",
      mime_type: "application/pdf",
      caption: "Summarize",
    });
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /^Echo: Summarize$/));
    const [request] = modelBodies(stack, "/v1/responses");
    assert.deepEqual(lastInput(request), [
      { type: "input_text", text: "Summarize" },
      { type: "input_file", filename: "report.pdf", file_data: dataUrl("application/pdf", report) },
    ]);
    telegram.sendText(user, "/history");
    const history = await telegram.waitForCall("sendMessage", saysTo(user.id, /Last messages/));
    assert.match(textOf(history), /\[file report\.pdf\] Summarize/);
    assertNoToken(stack);
  });
  await withStack({ env: { OPENAI_API: "chat" } }, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    sendDocument(telegram, user, report, {
      file_name: "report.pdf",
      mime_type: "application/pdf",
      caption: "Summarize",
    });
    sendDocument(telegram, user, new TextEncoder().encode("a,b\n1,2\n"), {
      file_name: "data.csv",
      mime_type: "text/csv",
    });
    await roundTrip(stack, user, "done");
    const calls = modelBodies(stack, "/v1/chat/completions");
    const user0 = (calls[0].messages as Json[]).at(-1)!;
    assert.deepEqual(user0.content, [
      { type: "text", text: "Summarize" },
      {
        type: "text",
        text:
          "--- file report.pdf ---\nQuarterly revenue rose 12 percent\n--- end of file report.pdf ---",
      },
    ]);
    const user1 = (calls[1].messages as Json[]).at(-1)!;
    assert.deepEqual(user1.content, [
      { type: "text", text: "--- file data.csv ---\na,b\n1,2\n\n--- end of file data.csv ---" },
    ]);
    // The kept history holds the labels, never the files or their text.
    const kept = (calls[2].messages as Json[]).slice(1, -1);
    assert.deepEqual(kept.filter((m) => m.role === "user").map((m) => m.content), [
      "[file report.pdf] Summarize",
      "[file data.csv]",
    ]);
    // (The fake model echoes its input, so only the user's side can tell.)
    const userSide = kept.filter((m) => m.role === "user");
    assert.ok(!JSON.stringify(userSide).includes("Quarterly revenue"));
  });
});

Deno.test("limits: an oversized file is refused from the update, with no getFile and no tokens", () =>
  withStack({ env: { MAX_FILE_MB: "5" } }, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    sendDocument(telegram, user, pdf("x"), {
      file_name: "big.pdf",
      mime_type: "application/pdf",
      size: 6 * MB,
    });
    const refusal = await telegram.waitForCall("sendMessage", saysTo(user.id, /too big/));
    assert.equal(
      textOf(refusal),
      "This file is too big (6 MB): I can take files up to 5 MB.",
    );
    // Unsupported kinds are refused the same way.
    sendDocument(telegram, user, new Uint8Array([0x50, 0x4b, 3, 4]), {
      file_name: "archive.zip",
      mime_type: "application/zip",
    });
    await telegram.waitForCall(
      "sendMessage",
      saysTo(user.id, /can't read "archive\.zip": this kind of file isn't supported/),
    );
    telegram.sendSticker(user);
    await telegram.waitForCall("sendMessage", saysTo(user.id, /can't read this kind of message/));
    assert.equal(telegram.callsTo("getFile").length, 0);
    assert.equal(modelBodies(stack, "/v1/responses").length, 0);
  }));

Deno.test("backends: a model without vision, and the Assistants backend, say why images can't be read", async () => {
  for (const env of [{}, { OPENAI_API: "chat" }] as Record<string, string>[]) {
    await withStack({ openai: { vision: false }, env }, async (stack) => {
      const { telegram } = stack;
      const user = stack.subscriber();
      sendPhoto(telegram, user, jpeg(), { caption: "What is this?" });
      await telegram.waitForCall(
        "sendMessage",
        saysTo(user.id, /can't look at images or read files/),
      );
      await stack.bot.waitForOutput(/set OPENAI_MODEL to a model with vision/);
      // Voice still works: it is text to the model.
      sendVoice(telegram, user, oggOpus(), { duration: 2 });
      await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: \[voice 0:02\]/));
    });
  }
  await withStack({ env: { OPENAI_ASSISTANT_ID: "asst_test" } }, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    sendPhoto(telegram, user, jpeg(), { caption: "What is this?" });
    await telegram.waitForCall(
      "sendMessage",
      saysTo(user.id, /can't look at images or read files/),
    );
    assert.equal(stack.openai.requests.filter((r) => r.path.includes("/threads")).length, 0);
    sendVoice(telegram, user, oggOpus(), { duration: 2 });
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: \[voice 0:02\] What/));
  });
});

Deno.test("history: media turns read as lines on the responses backend; the store keeps no bytes", () =>
  withStack({ env: { OPENAI_API: "responses" } }, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    sendVoice(telegram, user, oggOpus(), { duration: 12 });
    sendPhoto(telegram, user, jpeg(), { caption: "A cat?" });
    sendDocument(telegram, user, new TextEncoder().encode("todo: buy milk"), {
      file_name: "notes.txt",
      mime_type: "text/plain",
    });
    await roundTrip(stack, user, "end");
    telegram.sendText(user, "/history");
    const history = textOf(
      await telegram.waitForCall("sendMessage", saysTo(user.id, /Last messages/)),
    );
    for (
      const line of [
        /You:<\/b> \[voice 0:12\] What is the weather like today\?/,
        /You:<\/b> \[photo\] A cat\?/,
        /You:<\/b> \[file notes\.txt\]/,
      ]
    ) assert.match(history, line);
    telegram.sendText(user, "/export");
    await telegram.waitForCall("sendDocument", sentTo(user.id));
    const doc = telegram.chatMessages(user.id).findLast((m) => m.document)!.document!;
    const body = new TextDecoder().decode(doc.content);
    assert.match(body, /\[photo\] A cat\?/);
    // The third request carried the file, later ones only its label.
    const calls = modelBodies(stack, "/v1/responses");
    const last = JSON.stringify(calls.at(-1)!.input);
    assert.ok(!last.includes("base64"), last);
    // Deno KV lets a second process open the bot's file.
    const store = await KvStore.open(`${ROOT}${stack.env.KV_PATH}`);
    try {
      const kept = await store.get(`history:${user.id}`);
      assert.ok(kept && kept.includes("[file notes.txt]"), String(kept));
      assert.ok(!kept.includes("base64") && !kept.includes("todo: buy milk"), kept);
    } finally {
      await store.close();
    }
  }));

Deno.test("album: a bot killed mid-album answers the album once after the restart", () =>
  withStack({ env: { LEASE_SECONDS: "2" } }, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    const hold = openai.hold();
    sendAlbum(telegram, user, [jpeg(), jpeg(), jpeg()], { caption: "Three" });
    await hold.waiting; // the album's request is streaming
    assert.equal(await stack.bot.stop("SIGKILL"), 137);
    hold.release();
    stack.bot = spawnBot(stack.env);
    await stack.bot.waitForOutput(/Polling as @/);
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /^Echo: Three$/), {
      timeoutMs: 30_000,
    });
    await roundTrip(stack, user, "later");
    const answers = telegram.callsTo("sendRichMessage").filter(saysTo(user.id, /^Echo: Three$/));
    assert.equal(answers.length, 1, "answered once");
    const albumCalls = modelBodies(stack, "/v1/responses").filter((b) => Array.isArray(b.input));
    assert.equal(
      lastInput(albumCalls.at(-1)!).filter((p) => p.type === "input_image").length,
      3,
      "the restarted bot answered all three parts together",
    );
    assert.match(stack.bot.output(), /Inbox: taking over 3 unanswered update/);
  }));
