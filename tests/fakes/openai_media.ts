/**
 * Media for the fake OpenAI server (`openai.ts` routes to it): speech to text
 * (`POST /v1/audio/transcriptions`), and the checks of images and files in the input
 * of a response (`input_image`, `input_file`) or a chat completion (`image_url`,
 * `file`), shaped on the `openai@7.57` SDK's types.
 *
 * Transcriptions, as OpenAI answers them:
 * - the body must be `multipart/form-data` ("Invalid Content-Type header …" otherwise)
 *   with `file` and `model`; an unknown field is "Unrecognized request argument
 *   supplied: …";
 * - the format is read from the file name's extension: anything but flac, m4a, mp3,
 *   mp4, mpeg, mpga, oga, ogg, wav or webm is 400 "Invalid file format. Supported
 *   formats: ['flac', 'm4a', 'mp3', 'mp4', 'mpeg', 'mpga', 'oga', 'ogg', 'wav',
 *   'webm']" (the text users of the real API report);
 * - over 25 MB is 413 "Maximum content size limit (26214400) exceeded (N bytes read)";
 * - the container must match the extension (Ogg's "OggS", MP4's "ftyp", …), or it is
 *   400 "Audio file might be corrupted or unsupported". The sound itself is not
 *   decoded: the transcript is {@link FakeAudio.transcript}'s.
 * - The answer is `{ text, usage }`: usage by duration for `whisper-1`, by tokens for
 *   the gpt-4o models.
 *
 * Images and files, read part by part where `openai.ts` (a response's `input`) and
 * `openai_chat.ts` (a chat completion's user message) meet a content part; the errors
 * are OpenAI's, and where its text is not public the message says what is wrong in its
 * style. Exactly what the bot sends is modelled, strictly:
 * - `input_image` with `image_url` a `data:` URL (base64, an image MIME type, bytes
 *   that are PNG, JPEG, GIF or WebP: "You uploaded an unsupported image. …") and an
 *   optional `detail`;
 * - `input_file` with `file_data` a `data:` URL of a type the model reads (PDF, text;
 *   a PDF must start with `%PDF-`) and its `filename`;
 * - on Chat Completions, `image_url` parts (`{ url, detail? }`, the same data URLs).
 * Keys the SDK knows but the bot never sends (`file_id`, `file_url`, a file's `detail`,
 * `prompt_cache_breakpoint`, chat `file` and `input_audio` parts) and http(s) URLs
 * (the bot never hands out a URL: a Telegram file URL holds its token) are refused
 * with "FakeOpenAI does not model …".
 * - `vision: false` acts as a model without vision: any image or file is 400 "Invalid
 *   content type. image_url is only supported by certain models." (OpenAI's text for
 *   Chat Completions; the Responses route names `input_image` / `input_file`).
 */
import { Buffer } from "node:buffer";
import { HttpError, invalid, isObject, notModelled, rejectUnknown, wrongType } from "./openai.ts";

type Json = Record<string, unknown>;

const FORMATS = ["flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"];
const MAX_AUDIO_BYTES = 25 * 1024 * 1024;
const TRANSCRIPTION_FIELDS = [
  "file",
  "model",
  "chunking_strategy",
  "include[]",
  "keywords[]",
  "known_speaker_names[]",
  "known_speaker_references[]",
  "language",
  "languages[]",
  "prompt",
  "response_format",
  "stream",
  "temperature",
  "timestamp_granularities[]",
];
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
const FILE_TYPES = [
  "application/pdf",
  "text/plain",
  "text/markdown",
  "text/csv",
  "text/html",
  "application/json",
];

/** One transcription request the fake answered. */
export interface RecordedTranscription {
  model: string;
  filename: string;
  contentType: string;
  size: number;
}

/** The speech-to-text side of the fake; `FakeOpenAI.audio`. */
export class FakeAudio {
  /** The transcript of an audio file; default a fixed sentence. */
  transcript: (audio: { filename: string; model: string; bytes: Uint8Array }) => string = () =>
    "What is the weather like today?";
  /** Transcriptions answered, in order. */
  readonly transcriptions: RecordedTranscription[] = [];
  /** Delay before each transcription answers (for benchmarks); default 0. */
  delayMs = 0;

  /** `POST /v1/audio/transcriptions` with the raw body. */
  async transcribe(raw: Uint8Array, headers: Headers): Promise<Response> {
    const type = headers.get("content-type") ?? "";
    if (!/^multipart\/form-data/i.test(type)) {
      throw invalid(
        `Invalid Content-Type header (${type || "none"}), expected multipart/form-data. ` +
          "(HINT: If you're using curl, you can pass -H 'Content-Type: multipart/form-data')",
      );
    }
    if (raw.length > MAX_AUDIO_BYTES) {
      throw new HttpError(413, {
        message: `Maximum content size limit (${MAX_AUDIO_BYTES}) exceeded (${raw.length} ` +
          "bytes read)",
        type: "server_error",
        param: null,
        code: null,
      });
    }
    let form: FormData;
    try {
      form = await new Request("http://fake/", {
        method: "POST",
        body: raw as BodyInit,
        headers: { "content-type": type },
      }).formData();
    } catch {
      throw invalid("Could not parse multipart form");
    }
    for (const name of form.keys()) {
      if (!TRANSCRIPTION_FIELDS.includes(name)) {
        throw invalid(`Unrecognized request argument supplied: ${name}`);
      }
    }
    const file = form.get("file");
    const model = form.get("model");
    if (!(file instanceof File)) {
      throw invalid("Missing required parameter: 'file'.", "file", "missing_required_parameter");
    }
    if (typeof model !== "string" || !model) {
      throw invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter");
    }
    // Only speech-to-text models transcribe; a chat model is refused.
    if (model !== "whisper-1" && !/transcribe/.test(model)) {
      throw invalid(`Invalid model ${model}. The model must be a transcription model.`, "model");
    }
    const format = /\.([A-Za-z0-9]+)$/.exec(file.name)?.[1]?.toLowerCase();
    if (!format || !FORMATS.includes(format)) {
      throw invalid(
        `Invalid file format. Supported formats: [${FORMATS.map((f) => `'${f}'`).join(", ")}]`,
        null,
        null,
      );
    }
    const responseFormat = form.get("response_format") ?? "json";
    if (responseFormat !== "json") {
      throw invalid(`FakeOpenAI does not model response_format '${responseFormat}'.`);
    }
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (!containerMatches(format, bytes)) {
      throw invalid("Audio file might be corrupted or unsupported", "file", "invalid_value");
    }
    this.transcriptions.push({
      model,
      filename: file.name,
      contentType: file.type,
      size: bytes.length,
    });
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    const text = this.transcript({ filename: file.name, model, bytes });
    const usage = model === "whisper-1" ? { type: "duration", seconds: 1 } : {
      type: "tokens",
      input_tokens: 20,
      output_tokens: Math.ceil(text.length / 4),
      total_tokens: 20 + Math.ceil(text.length / 4),
      input_token_details: { audio_tokens: 20, text_tokens: 0 },
    };
    return new Response(JSON.stringify({ text, usage }), {
      headers: { "content-type": "application/json", "x-request-id": crypto.randomUUID() },
    });
  }
}

/** Whether the bytes are the container the extension names. */
function containerMatches(format: string, bytes: Uint8Array): boolean {
  const ascii = (at: number, text: string) =>
    [...text].every((c, i) => bytes[at + i] === c.charCodeAt(0));
  switch (format) {
    case "ogg":
    case "oga":
      return ascii(0, "OggS");
    case "mp4":
    case "m4a":
      return ascii(4, "ftyp");
    case "wav":
      return ascii(0, "RIFF") && ascii(8, "WAVE");
    case "flac":
      return ascii(0, "fLaC");
    case "webm":
      return bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3;
    default: // mp3, mpeg, mpga: an ID3 tag or an MPEG frame sync
      return ascii(0, "ID3") || (bytes[0] === 0xff && (bytes[1] & 0xe0) === 0xe0);
  }
}

/** The bytes' image type, from their first bytes. */
function imageType(bytes: Uint8Array): string | undefined {
  const at = (i: number, b: number[]) => b.every((v, j) => bytes[i + j] === v);
  if (at(0, [0x89, 0x50, 0x4e, 0x47])) return "image/png";
  if (at(0, [0xff, 0xd8, 0xff])) return "image/jpeg";
  if (at(0, [0x47, 0x49, 0x46, 0x38])) return "image/gif";
  if (at(0, [0x52, 0x49, 0x46, 0x46]) && at(8, [0x57, 0x45, 0x42, 0x50])) return "image/webp";
  return undefined;
}

/** A `data:<mime>;base64,<data>` URL's type and bytes; throws OpenAI's 400s. */
function readDataUrl(url: unknown, param: string, what: "image" | "file") {
  if (typeof url !== "string") throw wrongType(param, "a string", url);
  const example = what === "image"
    ? "an image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU=')"
    : "a file MIME type (e.g. 'data:application/pdf;base64,aW1nIGJ5dGVzIGhlcmU=')";
  const fail = (why: string) =>
    invalid(
      `Invalid '${param}'. Expected a base64-encoded data URL with ${example}, but got ${why}.`,
      param,
      "invalid_value",
    );
  if (/^https?:\/\//i.test(url)) throw notModelled("URLs (only data: URLs)", param);
  const match = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (!match) throw fail("a value without the 'data:' prefix");
  const [, mime, data] = match;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 !== 0 || data.length === 0) {
    throw fail("an invalid base64 encoding");
  }
  const known = what === "image" ? IMAGE_TYPES : FILE_TYPES;
  if (!known.includes(mime.toLowerCase())) throw fail(`unsupported MIME type '${mime}'`);
  return { mime: mime.toLowerCase(), bytes: new Uint8Array(Buffer.from(data, "base64")) };
}

function checkImageBytes(bytes: Uint8Array, param: string): void {
  if (!imageType(bytes)) {
    throw invalid(
      "You uploaded an unsupported image. Please make sure your image has of one the " +
        "following formats: ['png', 'jpeg', 'gif', 'webp'].",
      param,
      "invalid_image_format",
    );
  }
}

function checkFileBytes(mime: string, bytes: Uint8Array, param: string): void {
  if (mime === "application/pdf" && new TextDecoder().decode(bytes.slice(0, 5)) !== "%PDF-") {
    throw invalid("The file could not be parsed as a PDF.", param, "invalid_value");
  }
}

function noVision(partType: string, param: string): HttpError {
  return invalid(
    `Invalid content type. ${partType} is only supported by certain models.`,
    param,
    null,
  );
}

/** `detail` when present: one of `values`. */
function checkDetail(part: Json, values: string[], param: string): void {
  if (part.detail === undefined) return;
  if (!values.includes(String(part.detail))) {
    throw invalid(
      `Invalid value: '${String(part.detail)}'. Supported values are: ${
        values.map((v) => `'${v}'`).join(", ")
      }.`,
      param,
      "invalid_value",
    );
  }
}

/** Keys OpenAI knows on a part but the bot never sends: refused as not modelled. */
function refuseUnmodelled(part: Json, keys: string[], at: string): void {
  for (const key of keys) {
    if (part[key] !== undefined && part[key] !== null) {
      throw notModelled(`'${key}'`, `${at}.${key}`);
    }
  }
}

/** An `input_image` part of a response's input (`ResponseInputImage`), checked. */
export function checkInputImage(part: Json, at: string, vision: boolean): void {
  if (!vision) throw noVision("input_image", `${at}.type`);
  rejectUnknown(
    part,
    ["type", "detail", "file_id", "image_url", "prompt_cache_breakpoint"],
    `${at}.`,
  );
  refuseUnmodelled(part, ["file_id", "prompt_cache_breakpoint"], at);
  checkDetail(part, ["low", "high", "auto", "original"], `${at}.detail`);
  if (part.image_url === undefined || part.image_url === null) {
    throw invalid(
      `Missing required parameter: '${at}.image_url'.`,
      `${at}.image_url`,
      "missing_required_parameter",
    );
  }
  const { bytes } = readDataUrl(part.image_url, `${at}.image_url`, "image");
  checkImageBytes(bytes, `${at}.image_url`);
}

/** An `input_file` part of a response's input (`ResponseInputFile`), checked. */
export function checkInputFile(part: Json, at: string, vision: boolean): void {
  if (!vision) throw noVision("input_file", `${at}.type`);
  rejectUnknown(
    part,
    ["type", "detail", "file_data", "file_id", "file_url", "filename", "prompt_cache_breakpoint"],
    `${at}.`,
  );
  refuseUnmodelled(part, ["detail", "file_id", "file_url", "prompt_cache_breakpoint"], at);
  if (part.file_data === undefined) {
    throw invalid(
      `Missing required parameter: '${at}.file_data'.`,
      `${at}.file_data`,
      "missing_required_parameter",
    );
  }
  if (part.filename === undefined) {
    throw invalid(
      `Missing required parameter: '${at}.filename'.`,
      `${at}.filename`,
      "missing_required_parameter",
    );
  }
  if (typeof part.filename !== "string") {
    throw wrongType(`${at}.filename`, "a string", part.filename);
  }
  const { mime, bytes } = readDataUrl(part.file_data, `${at}.file_data`, "file");
  checkFileBytes(mime, bytes, `${at}.file_data`);
}

/**
 * An `image_url` part of a chat completion's user message
 * (`ChatCompletionContentPartImage`), checked. OpenAI writes this parameter path with
 * dots around the brackets (`messages.[0].content.[1].type`) in its vision error.
 */
export function checkChatImage(part: Json, at: string, vision: boolean): void {
  if (!vision) throw noVision("image_url", at.replace(/\[/g, ".[") + ".type");
  rejectUnknown(part, ["type", "image_url", "prompt_cache_breakpoint"], `${at}.`);
  refuseUnmodelled(part, ["prompt_cache_breakpoint"], at);
  if (part.image_url === undefined) {
    throw invalid(
      `Missing required parameter: '${at}.image_url'.`,
      `${at}.image_url`,
      "missing_required_parameter",
    );
  }
  if (!isObject(part.image_url)) throw wrongType(`${at}.image_url`, "an object", part.image_url);
  rejectUnknown(part.image_url, ["url", "detail"], `${at}.image_url.`);
  checkDetail(part.image_url, ["auto", "low", "high", "original"], `${at}.image_url.detail`);
  const { bytes } = readDataUrl(part.image_url.url, `${at}.image_url.url`, "image");
  checkImageBytes(bytes, `${at}.image_url.url`);
}
