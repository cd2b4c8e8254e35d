/**
 * The transcriber with the real SDK against the fake OpenAI server.
 */
import assert from "node:assert/strict";
import { OpenAI } from "openai";
import { FakeOpenAI, type FakeOpenAIOptions } from "../fakes/openai.ts";
import { createTranscriber } from "../../src/media/transcribe.ts";
import { MediaError } from "../../src/media/errors.ts";
import { oggOpus } from "../helpers/assets.ts";
import { withFakeOpenAI } from "../helpers/openai.ts";

const withFake = (
  fn: (fake: FakeOpenAI, client: OpenAI) => Promise<void>,
  options: FakeOpenAIOptions = {},
) => withFakeOpenAI(options, fn);

const voice = { data: oggOpus(), filename: "voice.ogg", mime: "audio/ogg" };

async function failsWith(promise: Promise<unknown>, kind: string, message?: RegExp) {
  const error = await promise.then(() => undefined, (e) => e);
  assert.ok(error instanceof MediaError, String(error));
  assert.equal(error.kind, kind, error.message);
  if (message) assert.match(error.message, message);
}

Deno.test("transcribe: a voice note goes as voice.ogg with the configured model", async () => {
  await withFake(async (fake, client) => {
    fake.audio.transcript = () => "  Hello there.  ";
    const transcribe = createTranscriber({ client, model: "gpt-4o-transcribe" });
    assert.equal(await transcribe(voice), "Hello there.");
    assert.deepEqual(fake.audio.transcriptions.map((t) => [t.model, t.filename, t.contentType]), [
      ["gpt-4o-transcribe", "voice.ogg", "audio/ogg"],
    ]);
  });
});

Deno.test("transcribe: empty text, refusals, rate limits and stops are told apart", async () => {
  await withFake(async (fake, client) => {
    const transcribe = createTranscriber({ client, model: "whisper-1" });
    fake.audio.transcript = () => " ";
    await failsWith(transcribe(voice), "emptyTranscript");
    fake.audio.transcript = () => "words";
    // Telegram's own name for the format: this fake (like some servers) refuses .opus.
    await failsWith(
      transcribe({ ...voice, filename: "voice.opus" }),
      "transcription",
      /Invalid file format.*OPENAI_TRANSCRIBE_MODEL/,
    );
    fake.failNext("/v1/audio/transcriptions", 429);
    await failsWith(transcribe(voice), "rateLimited");
    fake.failNext("/v1/audio/transcriptions", 503);
    await failsWith(transcribe(voice), "unavailable");
    const stopped = new AbortController();
    stopped.abort();
    await failsWith(transcribe(voice, stopped.signal), "stopped");
  });
});

Deno.test("transcribe: a server without the endpoint says so for the operator", async () => {
  await withFake(async (fake, client) => {
    fake.failNext("/v1/audio/transcriptions", 404, 1, {
      error: { message: "Invalid URL (POST /v1/audio/transcriptions)" },
    });
    const transcribe = createTranscriber({ client, model: "whisper-1" });
    await failsWith(transcribe(voice), "transcription", /serves \/audio\/transcriptions/);
  });
});
