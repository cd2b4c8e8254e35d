/**
 * Files for the fake Bot API server (`telegram.ts` routes to it): what users send
 * (voice notes, audio, round video notes, photos, albums, documents) with real bytes,
 * `getFile`, and the download route `GET /file/bot<token>/<file_path>`.
 *
 * As telegram-bot-api does:
 * - `getFile` answers `{ file_id, file_unique_id, file_size, file_path }`; an unknown
 *   or empty `file_id` is 400 "Bad Request: invalid file_id"; a file over 20 MB (what
 *   the public server lets bots download) is 400 "Bad Request: file is too big" and
 *   gets no `file_path`.
 * - The download route serves a file only at the path `getFile` gave for it, under
 *   the right token; anything else is 404 "Not Found". A file is downloadable only
 *   after `getFile` was called for it (Telegram's paths are handed out by getFile).
 *
 * A file's `file_size` in the update may be set apart from its bytes (`size`), to
 * stand for a large file without holding it.
 */
import type { FakeUser } from "./telegram.ts";

type Json = Record<string, unknown>;

/** Telegram's download limit for bots (the public Bot API server). */
export const DOWNLOAD_LIMIT = 20 * 1024 * 1024;

interface StoredFile {
  file_id: string;
  file_unique_id: string;
  bytes: Uint8Array;
  /** The size Telegram reports (the bytes' length unless set). */
  size: number;
  path: string;
  /** getFile was called: the path is handed out. */
  served: boolean;
}

/** An error as the Bot API reports it. */
export interface FileApiError {
  error_code: number;
  description: string;
}

/** What the fake needs to send a user's message; `FakeTelegram` has it. */
export interface MessageSender {
  sendMessageFields(user: FakeUser, fields: Json): { update_id: number; message: Json };
  readonly files: FakeFiles;
}

/** The files users sent; see the module comment. */
export class FakeFiles {
  #byId = new Map<string, StoredFile>();
  #byPath = new Map<string, StoredFile>();
  #counter = 0;
  /** Paths downloaded, in order. */
  readonly downloads: string[] = [];

  /**
   * Registers bytes as a file users sent; `prefix` is the file_id's start (Telegram's
   * ids begin with the type), `folder` and `ext` make the file_path.
   */
  add(
    bytes: Uint8Array,
    kind: { prefix: string; folder: string; ext: string },
    size = bytes.length,
  ): { file_id: string; file_unique_id: string; file_size: number } {
    const n = ++this.#counter;
    const file: StoredFile = {
      file_id: `${kind.prefix}AxkBAAI${String(n).padStart(4, "0")}${
        crypto.randomUUID().slice(0, 8)
      }`,
      file_unique_id: `AgAD${String(n).padStart(4, "0")}`,
      bytes: bytes.slice(),
      size,
      path: `${kind.folder}/file_${n}.${kind.ext}`,
      served: false,
    };
    this.#byId.set(file.file_id, file);
    this.#byPath.set(file.path, file);
    return { file_id: file.file_id, file_unique_id: file.file_unique_id, file_size: size };
  }

  /** `getFile`: the File object, or the Bot API's error. */
  getFile(params: Json): { result?: Json; error?: FileApiError } {
    const id = typeof params.file_id === "string" ? params.file_id : "";
    const file = this.#byId.get(id);
    if (!file) return { error: { error_code: 400, description: "Bad Request: invalid file_id" } };
    if (file.size > DOWNLOAD_LIMIT) {
      return { error: { error_code: 400, description: "Bad Request: file is too big" } };
    }
    file.served = true;
    return {
      result: {
        file_id: file.file_id,
        file_unique_id: file.file_unique_id,
        file_size: file.size,
        file_path: file.path,
      },
    };
  }

  /** `GET /file/bot<token>/<path>`; `authorized` when the token is the bot's. */
  download(authorized: boolean, path: string): Response {
    const file = this.#byPath.get(decodeURIComponent(path));
    if (!authorized || !file?.served) {
      return new Response(
        JSON.stringify({ ok: false, error_code: 404, description: "Not Found" }),
        { status: 404, headers: { "content-type": "application/json" } },
      );
    }
    this.downloads.push(file.path);
    return new Response(file.bytes.slice(), {
      headers: { "content-type": "application/octet-stream" },
    });
  }
}

/** Options every sending helper takes. */
export interface SendOptions {
  caption?: string;
  media_group_id?: string;
  /** The file_size the update and getFile report (default the bytes' length). */
  size?: number;
}

const caption = (o: SendOptions): Json => ({
  ...(o.caption ? { caption: o.caption } : {}),
  ...(o.media_group_id ? { media_group_id: o.media_group_id } : {}),
});

/** A voice note (Ogg/Opus, `.oga` on Telegram's side) of `duration` seconds. */
export function sendVoice(
  tg: MessageSender,
  user: FakeUser,
  bytes: Uint8Array,
  opts: SendOptions & { duration: number },
) {
  const file = tg.files.add(
    bytes,
    { prefix: "AwACAgIAAx", folder: "voice", ext: "oga" },
    opts.size,
  );
  return tg.sendMessageFields(user, {
    voice: { ...file, duration: opts.duration, mime_type: "audio/ogg" },
    ...caption(opts),
  });
}

/** An audio file (music). */
export function sendAudio(
  tg: MessageSender,
  user: FakeUser,
  bytes: Uint8Array,
  opts: SendOptions & { duration: number; mime_type: string; file_name: string },
) {
  const ext = opts.file_name.split(".").pop() ?? "mp3";
  const file = tg.files.add(bytes, { prefix: "CQACAgIAAx", folder: "music", ext }, opts.size);
  return tg.sendMessageFields(user, {
    audio: {
      ...file,
      duration: opts.duration,
      mime_type: opts.mime_type,
      file_name: opts.file_name,
    },
    ...caption(opts),
  });
}

/** A round video note (MP4) of `duration` seconds. */
export function sendVideoNote(
  tg: MessageSender,
  user: FakeUser,
  bytes: Uint8Array,
  opts: SendOptions & { duration: number },
) {
  const file = tg.files.add(
    bytes,
    { prefix: "DQACAgIAAx", folder: "video_notes", ext: "mp4" },
    opts.size,
  );
  return tg.sendMessageFields(user, {
    video_note: { ...file, length: 240, duration: opts.duration },
  });
}

/**
 * A photo: Telegram's sizes, a 90×90 thumbnail (its own bytes, `thumbnail`) and the
 * full size with `bytes`.
 */
export function sendPhoto(
  tg: MessageSender,
  user: FakeUser,
  bytes: Uint8Array,
  opts: SendOptions & { thumbnail?: Uint8Array } = {},
) {
  const folder = { prefix: "AgACAgIAAx", folder: "photos", ext: "jpg" };
  const small = tg.files.add(opts.thumbnail ?? bytes, folder);
  const large = tg.files.add(bytes, folder, opts.size);
  return tg.sendMessageFields(user, {
    photo: [{ ...small, width: 90, height: 90 }, { ...large, width: 1280, height: 960 }],
    ...caption(opts),
  });
}

/** Albums sent so far: each gets its own `media_group_id`, as Telegram gives it. */
let albums = 0;

/** An album: photos sharing a media_group_id, the caption on the first, one update each. */
export function sendAlbum(
  tg: MessageSender,
  user: FakeUser,
  photos: Uint8Array[],
  opts: { caption?: string } = {},
) {
  const media_group_id = String(13_000_000_000_000_000n + BigInt(++albums));
  return photos.map((bytes, i) =>
    sendPhoto(tg, user, bytes, { media_group_id, caption: i === 0 ? opts.caption : undefined })
  );
}

/** A document with a file name and MIME type. */
export function sendDocument(
  tg: MessageSender,
  user: FakeUser,
  bytes: Uint8Array,
  opts: SendOptions & { file_name: string; mime_type?: string },
) {
  const ext = opts.file_name.includes(".") ? opts.file_name.split(".").pop()! : "bin";
  const file = tg.files.add(bytes, { prefix: "BQACAgIAAx", folder: "documents", ext }, opts.size);
  return tg.sendMessageFields(user, {
    document: {
      ...file,
      file_name: opts.file_name,
      ...(opts.mime_type ? { mime_type: opts.mime_type } : {}),
    },
    ...caption(opts),
  });
}
