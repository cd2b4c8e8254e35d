import assert from "node:assert/strict";
import type { Message } from "grammy/types";
import {
  audioFilename,
  isTextDocument,
  MB,
  type MediaPlan,
  pickPhoto,
  planMedia,
} from "../../src/media/classify.ts";

const limits = { maxFileBytes: 20 * MB };
const base = { message_id: 1, date: 0, chat: { id: 5, type: "private", first_name: "A" } };
const msg = (fields: Record<string, unknown>) => ({ ...base, ...fields }) as unknown as Message;
const file = (id: string, size?: number) => ({
  file_id: id,
  file_unique_id: `u${id}`,
  ...(size === undefined ? {} : { file_size: size }),
});

function plan(messages: Message[], maxFileBytes = limits.maxFileBytes): MediaPlan {
  const result = planMedia(messages, { maxFileBytes });
  assert.ok(!("reason" in result), `refused: ${JSON.stringify(result)}`);
  return result;
}

Deno.test("classify: a voice note is audio sent as voice.ogg, with its duration", () => {
  const p = plan([msg({ voice: { ...file("v", 9000), duration: 12, mime_type: "audio/ogg" } })]);
  assert.deepEqual(p, {
    items: [{
      kind: "audio",
      audio: "voice",
      fileId: "v",
      size: 9000,
      seconds: 12,
      filename: "voice.ogg",
      mime: "audio/ogg",
    }],
    caption: "",
    audioSeconds: 12,
  });
});

Deno.test("classify: a round video note is transcribed from its MP4", () => {
  const p = plan([msg({ video_note: { ...file("n", 300_000), length: 240, duration: 7 } })]);
  assert.equal(p.items[0].kind, "audio");
  assert.deepEqual(
    p.items[0].kind === "audio" && [p.items[0].filename, p.items[0].mime, p.audioSeconds],
    ["video_note.mp4", "video/mp4", 7],
  );
});

Deno.test("classify: audio files by MIME type or extension; unknown formats refused", () => {
  assert.equal(audioFilename("audio/mpeg", "song.mp3"), "audio.mp3");
  assert.equal(audioFilename("audio/x-m4a", undefined), "audio.m4a");
  assert.equal(audioFilename(undefined, "note.oga"), "audio.ogg");
  assert.equal(audioFilename("application/octet-stream", "take.flac"), "audio.flac");
  assert.equal(audioFilename("audio/aac", "x.aac"), undefined);
  const refused = planMedia(
    [msg({
      audio: { ...file("a", 100), duration: 3, mime_type: "audio/aac", file_name: "x.aac" },
    })],
    limits,
  );
  assert.deepEqual(refused, { reason: "fileType", name: "x.aac" });
});

Deno.test("classify: a photo takes the largest size under the limit", () => {
  const sizes = [
    { ...file("s", 1_000), width: 90, height: 90 },
    { ...file("m", 50_000), width: 320, height: 320 },
    { ...file("l", 900_000), width: 1280, height: 1280 },
  ];
  assert.equal(pickPhoto(sizes, 20 * MB).file_id, "l");
  assert.equal(pickPhoto(sizes, 100_000).file_id, "m");
  // None fits: the smallest-but-largest still goes, and the size check refuses it.
  assert.equal(pickPhoto(sizes.slice(2), 100_000).file_id, "l");
  const p = plan([msg({ photo: sizes, caption: " What is this? " })]);
  assert.deepEqual(p.items, [{ kind: "image", fileId: "l", size: 900_000 }]);
  assert.equal(p.caption, "What is this?");
});

Deno.test("classify: documents: images, PDFs and text are taken, other types refused", () => {
  const doc = (name: string, mime?: string) =>
    msg({ document: { ...file(name, 10), file_name: name, ...(mime ? { mime_type: mime } : {}) } });
  assert.deepEqual(plan([doc("a.png", "image/png")]).items[0].kind, "image");
  assert.deepEqual(plan([doc("r.pdf", "application/pdf")]).items[0], {
    kind: "file",
    fileId: "r.pdf",
    size: 10,
    name: "r.pdf",
    mime: "application/pdf",
  });
  // Text-like files go as text/plain, by type or by extension.
  for (
    const [name, mime] of [["n.md", "text/markdown"], ["d.json", "application/json"], [
      "main.py",
      "application/octet-stream",
    ], ["Dockerfile", undefined]]
  ) {
    const item = plan([doc(name!, mime)]).items[0];
    assert.deepEqual(item.kind === "file" && [item.name, item.mime], [name, "text/plain"]);
  }
  assert.deepEqual(planMedia([doc("x.zip", "application/zip")], limits), {
    reason: "fileType",
    name: "x.zip",
  });
  assert.deepEqual(planMedia([doc("pic.heic", "image/heic")], limits), {
    reason: "fileType",
    name: "pic.heic",
  });
  assert.equal(isTextDocument("text/csv", "t.csv"), true);
  assert.equal(isTextDocument("application/vnd.ms-excel", "t.xls"), false);
});

Deno.test("classify: videos, animations, stickers and the like are refused", () => {
  const video = { ...file("v", 10), width: 1, height: 1, duration: 1 };
  assert.deepEqual(planMedia([msg({ video })], limits), { reason: "video" });
  // An animation carries a document too: it is still a video.
  assert.deepEqual(
    planMedia(
      [msg({ animation: video, document: { ...file("v", 10), mime_type: "video/mp4" } })],
      limits,
    ),
    { reason: "video" },
  );
  assert.deepEqual(planMedia([msg({ sticker: { ...file("s") } })], limits), {
    reason: "unsupported",
  });
  assert.deepEqual(planMedia([msg({ location: { latitude: 0, longitude: 0 } })], limits), {
    reason: "unsupported",
  });
});

Deno.test("classify: sizes over MAX_FILE_MB, or over 25 MB for audio, refuse from the update", () => {
  const big = msg({
    document: { ...file("d", 21 * MB), file_name: "big.pdf", mime_type: "application/pdf" },
  });
  assert.deepEqual(planMedia([big], limits), {
    reason: "tooBig",
    size: 21 * MB,
    maxBytes: 20 * MB,
  });
  // A local Bot API server allows more; transcription still takes 25 MB at most.
  const audio = msg({ audio: { ...file("a", 30 * MB), duration: 600, mime_type: "audio/mpeg" } });
  assert.deepEqual(planMedia([audio], { maxFileBytes: 100 * MB }), {
    reason: "tooBig",
    size: 30 * MB,
    maxBytes: 25 * MB,
  });
  // No size in the update: taken here, checked again at download.
  assert.equal(plan([msg({ document: { ...file("d"), file_name: "a.txt" } })]).items.length, 1);
});

Deno.test("classify: an album is one plan: items in order, captions joined, one refusal refuses all", () => {
  const photo = (id: string, caption?: string) =>
    msg({ photo: [{ ...file(id, 100), width: 10, height: 10 }], ...(caption ? { caption } : {}) });
  const p = plan([photo("1", "Compare these"), photo("2"), photo("3")]);
  assert.deepEqual(p.items.map((i) => i.fileId), ["1", "2", "3"]);
  assert.equal(p.caption, "Compare these");
  const video = { ...file("v", 10), width: 1, height: 1, duration: 1 };
  assert.deepEqual(planMedia([photo("1"), msg({ video })], limits), { reason: "video" });
});
