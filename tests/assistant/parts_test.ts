/**
 * A UserInput in each API's terms, and media turns read back from a Conversation.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { APIError, BadRequestError } from "openai";
import {
  chatContent,
  dataUrl,
  FILE_TEXT_MAX_CHARS,
  responseInput,
} from "../../src/assistant/parts.ts";
import { AssistantError } from "../../src/assistant/assistant.ts";
import { isUnsupportedInputError, toAssistantError } from "../../src/assistant/errors.ts";
import { itemToMessage } from "../../src/assistant/responses.ts";
import { jpeg, pdf } from "../helpers/assets.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("parts: dataUrl is base64 of exactly the bytes (a view into a larger buffer too)", () => {
  const whole = bytes("xxHELLOxx");
  assert.equal(dataUrl("text/plain", whole.subarray(2, 7)), "data:text/plain;base64,SEVMTE8=");
  assert.equal(
    Buffer.from(dataUrl("image/jpeg", jpeg()).split(",")[1], "base64").length,
    jpeg().length,
  );
});

Deno.test("parts: Responses input is the text alone, or text, images and files as parts", () => {
  assert.equal(responseInput({ text: "hi" }), "hi");
  const image = jpeg();
  const report = pdf("x");
  assert.deepEqual(
    responseInput({
      text: "Look",
      images: [{ mime: "image/jpeg", data: image }],
      files: [{ name: "r.pdf", mime: "application/pdf", data: report }],
      label: "[photo] [file r.pdf] Look",
    }),
    [
      { type: "input_text", text: "Look" },
      { type: "input_image", image_url: dataUrl("image/jpeg", image), detail: "auto" },
      { type: "input_file", filename: "r.pdf", file_data: dataUrl("application/pdf", report) },
    ],
  );
  // No caption: no empty text part.
  assert.deepEqual(
    (responseInput({ text: "", images: [{ mime: "image/png", data: image }] }) as unknown[])
      .length,
    1,
  );
});

Deno.test("parts: Chat Completions get image_url parts and files as text (a PDF's text extracted)", async () => {
  const content = await chatContent({
    text: "Summarize",
    images: [{ mime: "image/jpeg", data: jpeg() }],
    files: [
      { name: "r.pdf", mime: "application/pdf", data: pdf("Revenue rose") },
      { name: "n.txt", mime: "text/plain", data: bytes("\uFEFFline one\nline two") },
    ],
  });
  assert.deepEqual(content, [
    { type: "text", text: "Summarize" },
    { type: "image_url", image_url: { url: dataUrl("image/jpeg", jpeg()) } },
    { type: "text", text: "--- file r.pdf ---\nRevenue rose\n--- end of file r.pdf ---" },
    { type: "text", text: "--- file n.txt ---\nline one\nline two\n--- end of file n.txt ---" },
  ]);
  assert.equal(await chatContent({ text: "plain" }), "plain");
});

Deno.test("parts: a long text file is cut; a file without text is unreadableFile", async () => {
  const long = await chatContent({
    text: "",
    files: [{
      name: "big.txt",
      mime: "text/plain",
      data: bytes("a".repeat(FILE_TEXT_MAX_CHARS + 5)),
    }],
  }) as { text: string }[];
  assert.match(long[0].text, /\[… the rest of the file, 5 characters, was left out\]/);
  for (
    const file of [
      { name: "scan.pdf", mime: "application/pdf", data: bytes("%PDF-1.4 broken") },
      { name: "empty.txt", mime: "text/plain", data: bytes("  \n") },
    ]
  ) {
    await assert.rejects(chatContent({ text: "", files: [file] }), (error) => {
      assert.ok(error instanceof AssistantError);
      assert.equal(error.kind, "unreadableFile");
      return true;
    });
  }
});

Deno.test("errors: a model's refusal of images is unsupportedInput; other 400s are not", () => {
  const refusal = new BadRequestError(
    400,
    {
      message: "Invalid content type. image_url is only supported by certain models.",
      type: "invalid_request_error",
      param: "messages.[1].content.[1].type",
      code: null,
    },
    undefined,
    new Headers(),
  );
  assert.equal(isUnsupportedInputError(refusal), true);
  assert.equal(toAssistantError(refusal, "asking").kind, "unsupportedInput");
  for (
    const message of [
      "Qwen2-7B is not a multimodal model",
      "image input is not supported - hint: you may need to provide the mmproj",
      "model llama3 does not support images",
    ]
  ) assert.equal(isUnsupportedInputError({ message }), true, message);
  const other = new BadRequestError(
    400,
    { message: "Unsupported parameter: 'temperature'", type: "x", param: null, code: null },
    undefined,
    new Headers(),
  );
  assert.equal(toAssistantError(other, "asking").kind, "failed");
  const server = APIError.generate(
    500,
    { message: "Invalid content type" },
    undefined,
    new Headers(),
  );
  assert.equal(toAssistantError(server, "asking").kind, "unavailable", "5xx is the server's fault");
});

Deno.test("responses: media parts read back from a Conversation as markers, never bytes", () => {
  const item = (role: "user" | "assistant", content: unknown[]) =>
    ({ type: "message", id: "msg_1", status: "completed", role, content }) as never;
  assert.deepEqual(
    itemToMessage(item("user", [
      { type: "input_text", text: "Compare" },
      { type: "input_image", image_url: dataUrl("image/jpeg", jpeg()), detail: "auto" },
      { type: "input_image", image_url: dataUrl("image/jpeg", jpeg()), detail: "auto" },
      { type: "input_file", filename: "r.pdf", file_data: "data:application/pdf;base64,AA==" },
    ])),
    { role: "user", text: "[2 photos] [file r.pdf] Compare" },
  );
  assert.deepEqual(
    itemToMessage(item("user", [{ type: "input_image", image_url: "data:x", detail: "auto" }])),
    { role: "user", text: "[photo]" },
  );
  assert.deepEqual(
    itemToMessage(item("assistant", [{ type: "output_text", text: "Two cats", annotations: [] }])),
    { role: "assistant", text: "Two cats" },
  );
});
