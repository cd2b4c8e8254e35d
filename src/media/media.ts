/**
 * The media step of the answer path, built once by `app.ts`: voice notes, photos and
 * files turned into model input (`UserInput`) before the assistant is asked.
 *
 * - `classify.ts`: what a message or album carries, and the size limits, from the
 *   update alone (nothing downloaded when a limit refuses it);
 * - `download.ts`: `getFile` and the download into memory;
 * - `transcribe.ts`: speech to text (`OPENAI_TRANSCRIBE_MODEL`);
 * - `input.ts`: the input, its label and the transcripts;
 * - `album.ts`: album parts gathered and answered once.
 */
import type { Api } from "grammy";
import type { OpenAI } from "openai";
import { Albums, type AlbumsOptions } from "./album.ts";
import { MB, type MediaPlan, type PlanLimits } from "./classify.ts";
import { createDownloader, type Download } from "./download.ts";
import { type PreparedInput, prepareInput } from "./input.ts";
import { createTranscriber, type Transcribe } from "./transcribe.ts";

/** grammY's AbortSignal type (from its Node build); the platform's works the same. */
type ApiSignal = Parameters<Api["getFile"]>[1];

/** What the chat handler uses of the media step. */
export interface Media {
  limits: PlanLimits;
  albums: Albums;
  /** Downloads and transcribes a plan's files; see `input.ts`. */
  prepare(
    plan: MediaPlan,
    signal?: AbortSignal,
    onAudio?: (seconds: number) => void,
  ): Promise<PreparedInput>;
}

export interface MediaOptions {
  /** The bot's API (getFile). */
  api: Api;
  telegram: { apiRoot: string; token: string };
  /** The OpenAI client (transcriptions). */
  client: OpenAI;
  transcribeModel: string;
  /** `MAX_FILE_MB`. */
  maxFileMb: number;
  /** Marks album parts handled (`markDone`). */
  settled: AlbumsOptions["settled"];
  /** Replacements for tests. */
  download?: Download;
  transcribe?: Transcribe;
}

/** Builds the media step. */
export function createMedia(options: MediaOptions): Media {
  const limits = { maxFileBytes: options.maxFileMb * MB };
  const download = options.download ?? createDownloader({
    getFile: (fileId, signal) => options.api.getFile(fileId, signal as ApiSignal),
    ...options.telegram,
  });
  const transcribe = options.transcribe ??
    createTranscriber({ client: options.client, model: options.transcribeModel });
  return {
    limits,
    albums: new Albums({ settled: options.settled }),
    prepare: (plan, signal, onAudio) =>
      prepareInput(plan, { download, transcribe, limits }, signal, onAudio),
  };
}
