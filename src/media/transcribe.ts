/**
 * Speech to text: `POST /audio/transcriptions` (`client.audio.transcriptions.create({
 * file, model })`) with the model from `OPENAI_TRANSCRIBE_MODEL` (default
 * `gpt-4o-mini-transcribe`), on the same endpoint and key as the assistant.
 *
 * No conversion: OpenAI reads Ogg (the SDK documents flac, mp3, mp4, mpeg, mpga, m4a,
 * ogg, wav and webm, and asks for "an extension-bearing filename and an appropriate
 * content type"), so a Telegram voice note (Ogg/Opus, `.oga` on Telegram's side) goes
 * as it is, named `voice.ogg` with type `audio/ogg`; a round video note goes as
 * `video_note.mp4`. The bytes are held in memory for the request only.
 */
import { APIUserAbortError, type OpenAI, toFile } from "openai";
import { toAssistantError } from "../assistant/errors.ts";
import { MediaError } from "./errors.ts";

/** Turns audio bytes into text; rejects with a {@link MediaError}. */
export type Transcribe = (
  audio: { data: Uint8Array; filename: string; mime: string },
  signal?: AbortSignal,
) => Promise<string>;

export interface TranscriberOptions {
  client: OpenAI;
  model: string;
}

/** Creates the transcriber. An empty transcript rejects with kind `emptyTranscript`. */
export function createTranscriber(options: TranscriberOptions): Transcribe {
  const { client, model } = options;
  return async ({ data, filename, mime }, signal) => {
    let text: string;
    try {
      const file = await toFile(data, filename, { type: mime });
      const result = await client.audio.transcriptions.create({ file, model }, { signal });
      text = result.text ?? "";
    } catch (error) {
      if (error instanceof APIUserAbortError || signal?.aborted) {
        throw new MediaError("stopped", "stopped while transcribing");
      }
      const mapped = toAssistantError(error, `transcribing ${filename} with ${model}`);
      const kind = mapped.kind === "rateLimited" || mapped.kind === "unavailable"
        ? mapped.kind
        : "transcription";
      throw new MediaError(
        kind,
        `${mapped.message} (check OPENAI_TRANSCRIBE_MODEL, and that OPENAI_BASE_URL serves ` +
          "/audio/transcriptions)",
      );
    }
    if (!text.trim()) {
      throw new MediaError("emptyTranscript", `${model} heard no words in ${filename}`);
    }
    return text.trim();
  };
}
