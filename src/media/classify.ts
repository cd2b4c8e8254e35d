/**
 * What a message (or an album of messages) carries, decided from the update alone,
 * before anything is downloaded: which files to fetch, what each becomes for the
 * model, and whether a size limit refuses it. Pure: no I/O, unit-tested.
 *
 * | message                                   | becomes                                  |
 * | ----------------------------------------- | ---------------------------------------- |
 * | voice note (Ogg/Opus)                     | a transcript (`voice.ogg`, audio/ogg)    |
 * | audio file (mp3, m4a, ogg, flac, wav, …)  | a transcript                             |
 * | round video note (MP4)                    | a transcript of its sound                |
 * | photo                                     | an image: the largest size under limits  |
 * | document image/jpeg, png, gif, webp       | an image                                 |
 * | document PDF                              | a file                                   |
 * | document text-like (txt, md, csv, code…)  | a file (sent as text/plain)              |
 * | video, animation, sticker, other document | refused with a text that says so         |
 *
 * Sizes: Telegram lets bots download at most 20 MB (`getFile`), transcription takes at
 * most 25 MB a file, and `MAX_FILE_MB` bounds everything (default 20). A file whose
 * size the update does not give is checked again from `getFile` and while downloading.
 */
import type { Message } from "grammy/types";
import type { AudioKind } from "./label.ts";

/** Bytes in a MB as Telegram and OpenAI count their limits (MiB). */
export const MB = 1024 * 1024;
/** What OpenAI's transcription endpoint takes in one file. */
export const TRANSCRIBE_MAX_BYTES = 25 * MB;

/** One file to fetch, and what it becomes. */
export type MediaItem =
  | {
    kind: "audio";
    audio: AudioKind;
    fileId: string;
    size?: number;
    seconds: number;
    /** The name and type the transcription request gives it (the format is read from them). */
    filename: string;
    mime: string;
  }
  | { kind: "image"; fileId: string; size?: number }
  | { kind: "file"; fileId: string; size?: number; name: string; mime: string };

/** Why a message is refused before anything is downloaded. */
export type MediaRefusal =
  | { reason: "unsupported" }
  | { reason: "video" }
  | { reason: "fileType"; name: string }
  | { reason: "tooBig"; size: number; maxBytes: number };

/** A message (or album) the bot can take: the files, their caption, the audio length. */
export interface MediaPlan {
  items: MediaItem[];
  caption: string;
  /** Seconds of voice and audio, as the updates give them (the daily audio limit). */
  audioSeconds: number;
}

export interface PlanLimits {
  /** `MAX_FILE_MB` in bytes. */
  maxFileBytes: number;
}

/** Audio formats OpenAI's transcription endpoint reads, by MIME type → extension. */
const AUDIO_TYPES: Record<string, string> = {
  "audio/ogg": "ogg",
  "audio/opus": "ogg",
  "audio/mpeg": "mp3",
  "audio/mp3": "mp3",
  "audio/mp4": "m4a",
  "audio/m4a": "m4a",
  "audio/x-m4a": "m4a",
  "audio/flac": "flac",
  "audio/x-flac": "flac",
  "audio/wav": "wav",
  "audio/x-wav": "wav",
  "audio/wave": "wav",
  "audio/vnd.wave": "wav",
  "audio/webm": "webm",
};
const AUDIO_EXTENSIONS = new Set([
  "ogg",
  "oga",
  "opus",
  "mp3",
  "m4a",
  "mp4",
  "flac",
  "wav",
  "webm",
]);

/** Images the models take (OpenAI: PNG, JPEG, WebP, non-animated GIF). */
export const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/gif", "image/webp"]);

/** Text-like documents by MIME type (besides `text/*`). */
const TEXT_TYPES = new Set([
  "application/json",
  "application/ld+json",
  "application/xml",
  "application/x-yaml",
  "application/yaml",
  "application/toml",
  "application/javascript",
  "application/typescript",
  "application/x-javascript",
  "application/x-typescript",
  "application/x-sh",
  "application/x-python",
  "application/x-python-code",
  "application/sql",
  "application/x-tex",
  "application/x-ndjson",
]);

/** Text-like documents by extension (a client often sends code as application/octet-stream). */
const TEXT_EXTENSIONS = new Set(
  (
    "txt text md markdown rst org csv tsv json jsonl ndjson yaml yml toml ini cfg conf " +
    "properties xml html htm css scss sass less log sql tex bib srt vtt " +
    "py pyi js mjs cjs jsx ts tsx mts cts go rs java kt kts scala groovy gradle c h cc cpp " +
    "cxx hpp hh cs fs vb swift m mm rb php pl pm lua r jl dart ex exs erl hrl hs elm clj " +
    "cljs ml mli nim zig v sol sh bash zsh fish ps1 bat cmd vue svelte astro graphql proto " +
    "dockerfile makefile cmake patch diff"
  ).split(" "),
);

function extension(name: string | undefined): string {
  const base = (name ?? "").toLowerCase().split("/").pop() ?? "";
  if (base === "dockerfile" || base === "makefile") return base;
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot + 1) : "";
}

/** The transcription file name for an audio file, or undefined when its format is not read. */
export function audioFilename(
  mime: string | undefined,
  name: string | undefined,
): string | undefined {
  const byType = mime ? AUDIO_TYPES[mime.toLowerCase()] : undefined;
  if (byType) return `audio.${byType}`;
  const ext = extension(name);
  if (!AUDIO_EXTENSIONS.has(ext)) return undefined;
  // Telegram's own `.oga` is Ogg; some servers refuse the name, none refuse `.ogg`.
  return `audio.${ext === "oga" || ext === "opus" ? "ogg" : ext}`;
}

const AUDIO_MIME: Record<string, string> = {
  ogg: "audio/ogg",
  mp3: "audio/mpeg",
  m4a: "audio/mp4",
  mp4: "audio/mp4",
  flac: "audio/flac",
  wav: "audio/wav",
  webm: "audio/webm",
};

/** Whether a document is text the model can read, by MIME type or extension. */
export function isTextDocument(mime: string | undefined, name: string | undefined): boolean {
  const type = mime?.toLowerCase() ?? "";
  return type.startsWith("text/") || TEXT_TYPES.has(type) || TEXT_EXTENSIONS.has(extension(name));
}

/** The photo size to fetch: the largest that fits `maxBytes` (sizes come smallest first). */
export function pickPhoto(
  sizes: NonNullable<Message["photo"]>,
  maxBytes: number,
): NonNullable<Message["photo"]>[number] {
  const fitting = sizes.filter((s) => s.file_size === undefined || s.file_size <= maxBytes);
  const pool = fitting.length ? fitting : sizes;
  return pool.reduce((best, s) => (s.width * s.height > best.width * best.height ? s : best));
}

/** One message's item, or why it is refused. */
function classifyOne(message: Message, limits: PlanLimits): MediaItem | MediaRefusal {
  if (message.voice) {
    return {
      kind: "audio",
      audio: "voice",
      fileId: message.voice.file_id,
      size: message.voice.file_size,
      seconds: message.voice.duration,
      filename: "voice.ogg",
      mime: "audio/ogg",
    };
  }
  if (message.video_note) {
    return {
      kind: "audio",
      audio: "video_note",
      fileId: message.video_note.file_id,
      size: message.video_note.file_size,
      seconds: message.video_note.duration,
      filename: "video_note.mp4",
      mime: "video/mp4",
    };
  }
  if (message.audio) {
    const a = message.audio;
    const filename = audioFilename(a.mime_type, a.file_name);
    if (!filename) return { reason: "fileType", name: a.file_name ?? a.title ?? "audio" };
    return {
      kind: "audio",
      audio: "audio",
      fileId: a.file_id,
      size: a.file_size,
      seconds: a.duration,
      filename,
      mime: AUDIO_MIME[filename.split(".").pop()!],
    };
  }
  if (message.photo?.length) {
    const photo = pickPhoto(message.photo, limits.maxFileBytes);
    return { kind: "image", fileId: photo.file_id, size: photo.file_size };
  }
  // An animation (GIF, MP4 without sound) also carries `document`: it is a video.
  if (message.video || message.animation) return { reason: "video" };
  if (message.document) {
    const d = message.document;
    const name = d.file_name ?? "file";
    const mime = d.mime_type?.toLowerCase();
    if (mime && IMAGE_TYPES.has(mime)) {
      return { kind: "image", fileId: d.file_id, size: d.file_size };
    }
    if (mime === "application/pdf" || extension(name) === "pdf") {
      return { kind: "file", fileId: d.file_id, size: d.file_size, name, mime: "application/pdf" };
    }
    if (isTextDocument(mime, name)) {
      return { kind: "file", fileId: d.file_id, size: d.file_size, name, mime: "text/plain" };
    }
    return { reason: "fileType", name };
  }
  return { reason: "unsupported" };
}

/** The largest size an item may have. */
export function maxBytesFor(item: MediaItem, limits: PlanLimits): number {
  return item.kind === "audio"
    ? Math.min(limits.maxFileBytes, TRANSCRIBE_MAX_BYTES)
    : limits.maxFileBytes;
}

/**
 * The plan for a message or an album (its parts in order), or why it is refused: the
 * first part the bot cannot take refuses the whole, and so does a file over its limit
 * (from the sizes in the update; nothing is downloaded).
 */
export function planMedia(messages: Message[], limits: PlanLimits): MediaPlan | MediaRefusal {
  const items: MediaItem[] = [];
  for (const message of messages) {
    const item = classifyOne(message, limits);
    if ("reason" in item) return item;
    const maxBytes = maxBytesFor(item, limits);
    if (item.size !== undefined && item.size > maxBytes) {
      return { reason: "tooBig", size: item.size, maxBytes };
    }
    items.push(item);
  }
  const caption = messages.map((m) => m.caption?.trim() ?? "").filter(Boolean).join("\n");
  const audioSeconds = items.reduce((s, i) => s + (i.kind === "audio" ? i.seconds : 0), 0);
  return { items, caption, audioSeconds };
}
