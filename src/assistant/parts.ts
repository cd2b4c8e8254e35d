/**
 * A {@link UserInput} in each API's terms. The bytes go inline as base64 `data:` URLs
 * (never a Telegram file URL: it contains the bot token), and only in the request of
 * the turn they came with: the history the bot keeps holds the input's label instead.
 *
 * - Responses (`conversations`, `responses`): `input_text`, then an `input_image`
 *   (`image_url: "data:image/jpeg;base64,…"`, `detail: "auto"`) per image and an
 *   `input_file` (`file_data: "data:application/pdf;base64,…"`, `filename`) per file.
 * - Chat Completions (`chat`): a `text` part, an `image_url` part per image, and each
 *   file's text inlined as a `text` part: a PDF's text extracted in process (`unpdf`),
 *   a text file decoded as UTF-8, at most {@link FILE_TEXT_MAX_CHARS} characters each.
 *   (OpenAI's own Chat Completions take PDFs as `file` parts, other servers do not;
 *   text works everywhere.)
 */
import { Buffer } from "node:buffer";
import type { OpenAI } from "openai";
import { AssistantError, hasMedia, type InputFile, type UserInput } from "./assistant.ts";
import { pdfText } from "../media/pdf.ts";

type ResponseContent = OpenAI.Responses.ResponseInputContent;
type ChatPart = OpenAI.Chat.ChatCompletionContentPart;

/** The most characters of one file's text inlined on the `chat` backend (≈ 25,000 tokens). */
export const FILE_TEXT_MAX_CHARS = 100_000;

/** `data:<mime>;base64,<bytes>`. */
export function dataUrl(mime: string, data: Uint8Array): string {
  return `data:${mime};base64,${
    Buffer.from(data.buffer, data.byteOffset, data.length).toString("base64")
  }`;
}

/** The Responses API's input for one user turn: the text alone, or content parts. */
export function responseInput(input: UserInput): string | ResponseContent[] {
  if (!hasMedia(input)) return input.text;
  const parts: ResponseContent[] = [];
  if (input.text) parts.push({ type: "input_text", text: input.text });
  for (const image of input.images ?? []) {
    parts.push({ type: "input_image", image_url: dataUrl(image.mime, image.data), detail: "auto" });
  }
  for (const file of input.files ?? []) {
    parts.push({
      type: "input_file",
      filename: file.name,
      file_data: dataUrl(file.mime, file.data),
    });
  }
  return parts;
}

/** A file's text for the `chat` backend; throws `unreadableFile` when there is none. */
async function fileText(file: InputFile): Promise<string> {
  let text: string;
  if (file.mime === "application/pdf") {
    try {
      text = await pdfText(file.data);
    } catch (error) {
      throw new AssistantError(
        "unreadableFile",
        `the PDF ${JSON.stringify(file.name)} could not be read: ${(error as Error)?.message}`,
        { cause: error },
      );
    }
  } else {
    text = new TextDecoder().decode(file.data).replace(/^\uFEFF/, "");
  }
  if (!text.trim()) {
    throw new AssistantError(
      "unreadableFile",
      `no text in ${JSON.stringify(file.name)} (a scanned PDF has none): the chat backend ` +
        "passes files as text; OPENAI_API=conversations or responses sends the file itself",
    );
  }
  // UTF-16 units: never fewer than characters, so a short text needs no count at all.
  if (text.length <= FILE_TEXT_MAX_CHARS) return text;
  let cut = FILE_TEXT_MAX_CHARS;
  const last = text.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--; // not inside a surrogate pair
  return `${text.slice(0, cut)}\n[… the rest of the file, ${
    text.length - cut
  } characters, was left out]`;
}

/** The Chat Completions content of one user turn: the text alone, or parts. */
export async function chatContent(input: UserInput): Promise<string | ChatPart[]> {
  if (!hasMedia(input)) return input.text;
  const parts: ChatPart[] = [];
  if (input.text) parts.push({ type: "text", text: input.text });
  for (const image of input.images ?? []) {
    parts.push({ type: "image_url", image_url: { url: dataUrl(image.mime, image.data) } });
  }
  for (const file of input.files ?? []) {
    const text = await fileText(file);
    parts.push({
      type: "text",
      text: `--- file ${file.name} ---\n${text}\n--- end of file ${file.name} ---`,
    });
  }
  return parts;
}
