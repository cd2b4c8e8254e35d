/**
 * The fake Bot API's files: updates with real bytes, getFile and the download route,
 * over real HTTP with grammY's client.
 */
import assert from "node:assert/strict";
import { Api, GrammyError } from "grammy";
import type { Message, Update } from "grammy/types";
import { FakeTelegram, type FakeUser } from "./telegram.ts";
import { DOWNLOAD_LIMIT, sendAlbum, sendDocument, sendPhoto, sendVoice } from "./telegram_files.ts";
import { jpeg, oggOpus, pdf } from "../helpers/assets.ts";

const alice: FakeUser = { id: 1001, first_name: "Alice", language_code: "en" };

async function withFake(fn: (tg: FakeTelegram, api: Api) => Promise<void>): Promise<void> {
  const tg = await FakeTelegram.start();
  try {
    await fn(tg, new Api(tg.token, { apiRoot: tg.apiRoot }));
  } finally {
    await tg.close();
  }
}

async function updates(api: Api): Promise<Update[]> {
  return await api.getUpdates({ timeout: 0 });
}

Deno.test("files: a voice note's update, getFile and its download", async () => {
  await withFake(async (tg, api) => {
    const bytes = oggOpus();
    sendVoice(tg, alice, bytes, { duration: 4 });
    const [update] = await updates(api);
    const voice = update.message!.voice!;
    assert.equal(voice.duration, 4);
    assert.equal(voice.mime_type, "audio/ogg");
    assert.equal(voice.file_size, bytes.length);
    assert.match(voice.file_id, /^AwACAgIAAx/);
    // The path is handed out by getFile only.
    const before = await fetch(`${tg.apiRoot}/file/bot${tg.token}/voice/file_1.oga`);
    assert.equal(before.status, 404);
    await before.body?.cancel();
    const file = await api.getFile(voice.file_id);
    assert.deepEqual(file, {
      file_id: voice.file_id,
      file_unique_id: voice.file_unique_id,
      file_size: bytes.length,
      file_path: "voice/file_1.oga",
    });
    const response = await fetch(`${tg.apiRoot}/file/bot${tg.token}/${file.file_path}`);
    assert.equal(response.status, 200);
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), bytes);
    assert.deepEqual(tg.files.downloads, ["voice/file_1.oga"]);
    // Another token, or another path: 404.
    for (const url of [`/file/bot1:wrong/${file.file_path}`, `/file/bot${tg.token}/voice/x.oga`]) {
      const r = await fetch(`${tg.apiRoot}${url}`);
      assert.equal(r.status, 404);
      assert.deepEqual(await r.json(), { ok: false, error_code: 404, description: "Not Found" });
    }
  });
});

Deno.test("files: getFile refuses unknown ids and files over 20 MB like the Bot API", async () => {
  await withFake(async (tg, api) => {
    await assert.rejects(api.getFile("nope"), (e) => {
      assert.ok(e instanceof GrammyError);
      assert.equal(e.description, "Bad Request: invalid file_id");
      return true;
    });
    sendDocument(tg, alice, pdf("x"), {
      file_name: "huge.pdf",
      mime_type: "application/pdf",
      size: DOWNLOAD_LIMIT + 1,
    });
    const [update] = await updates(api);
    assert.equal(update.message!.document!.file_size, DOWNLOAD_LIMIT + 1);
    await assert.rejects(api.getFile(update.message!.document!.file_id), (e) => {
      assert.ok(e instanceof GrammyError);
      assert.equal(e.description, "Bad Request: file is too big");
      return true;
    });
  });
});

Deno.test("files: photos carry a thumbnail and the full size; an album shares media_group_id", async () => {
  await withFake(async (tg, api) => {
    sendPhoto(tg, alice, jpeg(), { caption: "Look" });
    sendAlbum(tg, alice, [jpeg(), jpeg(), jpeg()], { caption: "Three" });
    const got = (await updates(api)).map((u) => u.message!) as Message[];
    assert.equal(got.length, 4);
    assert.equal(got[0].caption, "Look");
    assert.equal(got[0].photo!.length, 2);
    assert.equal(got[0].photo![1].width, 1280);
    const album = got.slice(1);
    assert.equal(new Set(album.map((m) => m.media_group_id)).size, 1);
    assert.ok(album[0].media_group_id);
    assert.deepEqual(album.map((m) => m.caption), ["Three", undefined, undefined]);
    const file = await api.getFile(album[2].photo![1].file_id);
    const response = await fetch(`${tg.apiRoot}/file/bot${tg.token}/${file.file_path}`);
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), jpeg());
  });
});
