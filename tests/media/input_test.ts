import assert from "node:assert/strict";
import { GrammyError } from "grammy";
import type { File } from "grammy/types";
import { createDownloader } from "../../src/media/download.ts";
import { MediaError } from "../../src/media/errors.ts";
import { prepareInput, sniffImage } from "../../src/media/input.ts";
import { audioMarker, clock, imagesMarker, withMarkers } from "../../src/media/label.ts";
import type { MediaPlan } from "../../src/media/classify.ts";
import { escapeMarkdown, transcriptQuote } from "../../src/bot/chat.ts";
import { jpeg, png } from "../helpers/assets.ts";

const TOKEN = "123456:SECRET-token_abcdefghijklmnopqrstuvwxyz";

/** A loopback file server: `/file/bot<TOKEN>/<path>` → the bytes, 404 otherwise. */
function fileServer(files: Record<string, Uint8Array>, opts: { lie?: boolean } = {}) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    const prefix = `/file/bot${TOKEN}/`;
    const bytes = path.startsWith(prefix) ? files[path.slice(prefix.length)] : undefined;
    if (!bytes) return new Response("Not Found", { status: 404 });
    // `lie`: a chunked body without a length, larger than announced anywhere.
    return new Response(
      opts.lie ? new Blob([bytes as BlobPart]).stream() : bytes as BodyInit,
    );
  });
  return { root: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

const getFileOf = (files: Record<string, { size?: number; path?: string }>) => (id: string) => {
  const f = files[id];
  if (!f) {
    return Promise.reject(
      new GrammyError(
        "Call to 'getFile' failed!",
        { ok: false, error_code: 400, description: "Bad Request: invalid file_id" },
        "getFile",
        {},
      ),
    );
  }
  return Promise.resolve(
    { file_id: id, file_unique_id: "u", file_size: f.size, file_path: f.path } as File,
  );
};

Deno.test("download: getFile, then the file URL; the bytes come back", async () => {
  const server = fileServer({ "voice/file_1.oga": new Uint8Array([1, 2, 3]) });
  try {
    const download = createDownloader({
      getFile: getFileOf({ v: { size: 3, path: "voice/file_1.oga" } }),
      apiRoot: server.root,
      token: TOKEN,
    });
    assert.deepEqual(await download("v", 100), new Uint8Array([1, 2, 3]));
  } finally {
    await server.close();
  }
});

Deno.test("download: failures name the cause, never the URL or the token", async () => {
  const server = fileServer({ "big": new Uint8Array(50) }, { lie: true });
  try {
    const download = createDownloader({
      getFile: getFileOf({
        gone: { size: 3, path: "missing/file" },
        big: { path: "big" },
        bigByGetFile: { size: 500, path: "big" },
        noPath: { size: 3 },
      }),
      apiRoot: server.root,
      token: TOKEN,
    });
    const fails = async (id: string, kind: string) => {
      const error = await download(id, 10).then(() => undefined, (e) => e);
      assert.ok(error instanceof MediaError, String(error));
      assert.equal(error.kind, kind, error.message);
      assert.ok(!error.message.includes(TOKEN) && !error.message.includes("SECRET"), error.message);
      return error;
    };
    assert.match((await fails("gone", "download")).message, /HTTP 404/);
    await fails("unknown", "download");
    await fails("noPath", "download");
    // No size anywhere: the download stops at the limit.
    await fails("big", "tooBig");
    assert.equal((await fails("bigByGetFile", "tooBig")).sizes.size, 500);
  } finally {
    await server.close();
  }
  // Nobody listening: the fetch error (which quotes the URL) is scrubbed.
  const closed = createDownloader({
    getFile: getFileOf({ v: { size: 3, path: "v" } }),
    apiRoot: server.root,
    token: TOKEN,
  });
  const error = await closed("v", 10).then(() => undefined, (e) => e);
  assert.ok(error instanceof MediaError && error.kind === "download");
  assert.ok(!error.message.includes(TOKEN), error.message);
});

Deno.test("download: getFile's 'file is too big' is a size refusal", async () => {
  const download = createDownloader({
    getFile: () =>
      Promise.reject(
        new GrammyError(
          "Call to 'getFile' failed!",
          { ok: false, error_code: 400, description: "Bad Request: file is too big" },
          "getFile",
          {},
        ),
      ),
    apiRoot: "http://127.0.0.1:9",
    token: TOKEN,
  });
  const error = await download("x", 10).then(() => undefined, (e) => e);
  assert.ok(error instanceof MediaError && error.kind === "tooBig");
});

Deno.test("input: sniffImage knows PNG, JPEG, GIF and WebP by their first bytes", async () => {
  assert.equal(sniffImage(await png()), "image/png");
  assert.equal(sniffImage(jpeg()), "image/jpeg");
  assert.equal(sniffImage(new TextEncoder().encode("GIF89a....")), "image/gif");
  assert.equal(sniffImage(new TextEncoder().encode("RIFF\0\0\0\0WEBPVP8 ")), "image/webp");
  assert.equal(sniffImage(new TextEncoder().encode("<svg/>")), undefined);
});

Deno.test("input: markers and clock", () => {
  assert.equal(clock(0), "0:00");
  assert.equal(clock(12), "0:12");
  assert.equal(clock(605), "10:05");
  assert.equal(clock(3725), "1:02:05");
  assert.equal(audioMarker("voice", 12), "[voice 0:12]");
  assert.equal(audioMarker("video_note", 30), "[video note 0:30]");
  assert.equal(imagesMarker(1), "[photo]");
  assert.equal(imagesMarker(3), "[3 photos]");
  assert.equal(withMarkers(["[photo]", ""], " caption "), "[photo] caption");
  assert.equal(withMarkers(["[file a.pdf]"], ""), "[file a.pdf]");
});

Deno.test("input: a voice note becomes its transcript after a marker; photos and files keep labels", async () => {
  const photo = jpeg();
  const bytes: Record<string, Uint8Array> = {
    voice: new Uint8Array([1]),
    photo,
    doc: new TextEncoder().encode("notes"),
  };
  const transcribed: { filename: string; mime: string }[] = [];
  const deps = {
    download: (id: string) => Promise.resolve(bytes[id]),
    transcribe: (audio: { data: Uint8Array; filename: string; mime: string }) => {
      transcribed.push({ filename: audio.filename, mime: audio.mime });
      return Promise.resolve("What's the weather?");
    },
    limits: { maxFileBytes: 1000 },
  };
  const voice: MediaPlan = {
    items: [{
      kind: "audio",
      audio: "voice",
      fileId: "voice",
      seconds: 12,
      filename: "voice.ogg",
      mime: "audio/ogg",
    }],
    caption: "",
    audioSeconds: 12,
  };
  let billed = 0;
  const v = await prepareInput(voice, deps, undefined, (s) => billed += s);
  assert.deepEqual(v.input, { text: "[voice 0:12] What's the weather?" });
  assert.deepEqual(v.transcripts, ["What's the weather?"]);
  assert.deepEqual(transcribed, [{ filename: "voice.ogg", mime: "audio/ogg" }]);
  assert.equal(billed, 12);

  const mixed: MediaPlan = {
    items: [
      { kind: "image", fileId: "photo" },
      { kind: "file", fileId: "doc", name: "notes.txt", mime: "text/plain" },
    ],
    caption: "Compare",
    audioSeconds: 0,
  };
  const m = await prepareInput(mixed, deps);
  assert.deepEqual(m.input, {
    text: "Compare",
    images: [{ mime: "image/jpeg", data: photo }],
    files: [{ name: "notes.txt", mime: "text/plain", data: bytes.doc }],
    label: "[photo] [file notes.txt] Compare",
  });
});

Deno.test("input: an image document that is no image is refused; a stop stops", async () => {
  const deps = {
    download: () => Promise.resolve(new TextEncoder().encode("<svg/>")),
    transcribe: () => Promise.resolve("x"),
    limits: { maxFileBytes: 1000 },
  };
  const plan: MediaPlan = { items: [{ kind: "image", fileId: "x" }], caption: "", audioSeconds: 0 };
  await assert.rejects(
    prepareInput(plan, deps),
    (e) => e instanceof MediaError && e.kind === "fileType",
  );
  const stopped = new AbortController();
  stopped.abort();
  await assert.rejects(
    prepareInput(plan, deps, stopped.signal),
    (e) => e instanceof MediaError && e.kind === "stopped",
  );
});

Deno.test("chat: a transcript is quoted above the answer, its Markdown shown as written", () => {
  assert.equal(transcriptQuote([]), "");
  assert.equal(transcriptQuote(["Hello there"]), "> 🎤 Hello there\n\n");
  assert.equal(
    transcriptQuote(["use *stars* and `code`\n# not a heading"]),
    "> 🎤 use \\*stars\\* and \\`code\\`\n> \\# not a heading\n\n",
  );
  assert.equal(transcriptQuote(["one", "two"]), "> 🎤 one\n>\n> 🎤 two\n\n");
  assert.equal(escapeMarkdown("1. item [link](x) <b>"), "1\\. item \\[link\\](x) \\<b\\>");
});
