/**
 * Downloads a Telegram file into memory: `getFile` through grammY (so the call is
 * counted and 429s are waited out like every other), then a GET of
 * `{apiRoot}/file/bot<token>/<file_path>`. That URL contains the bot token: it is built
 * here, used for one fetch, and never logged, returned or put in an error (a fetch
 * error's message, which may quote the URL, is reduced to its cause).
 *
 * The bytes stay in memory (never on disk) and the download stops at `maxBytes`, also
 * when the update or `getFile` gave no size or a wrong one.
 */
import { GrammyError } from "grammy";
import type { File } from "grammy/types";
import { MediaError } from "./errors.ts";

export interface DownloadOptions {
  /** `api.getFile` of the bot's API (calls counted, 429s waited out). */
  getFile: (fileId: string, signal?: AbortSignal) => Promise<File>;
  /** `TELEGRAM_API_ROOT` without a trailing slash. */
  apiRoot: string;
  token: string;
  /** For tests; default `fetch`. */
  fetch?: typeof fetch;
}

/** Fetches a file's bytes; rejects with a {@link MediaError}. */
export type Download = (
  fileId: string,
  maxBytes: number,
  signal?: AbortSignal,
) => Promise<Uint8Array>;

/** Creates the downloader. */
export function createDownloader(options: DownloadOptions): Download {
  const { apiRoot, token } = options;
  const fetchFn = options.fetch ?? fetch;
  /** An error's text with the URL and the token taken out. */
  const scrub = (text: string, url: string) =>
    text.replaceAll(url, "<file URL>").replaceAll(token, "<token>");

  return async (fileId, maxBytes, signal) => {
    let file: File;
    try {
      file = await options.getFile(fileId, signal);
    } catch (error) {
      if (signal?.aborted) throw new MediaError("stopped", "stopped while asking for the file");
      if (error instanceof GrammyError && /file is too big/i.test(error.description)) {
        throw new MediaError("tooBig", `getFile: ${error.description}`, { maxBytes });
      }
      const why = error instanceof GrammyError ? error.description : String(error);
      throw new MediaError("download", `getFile failed: ${scrub(why, apiRoot)}`);
    }
    if (file.file_size !== undefined && file.file_size > maxBytes) {
      throw new MediaError("tooBig", `the file has ${file.file_size} bytes`, {
        size: file.file_size,
        maxBytes,
      });
    }
    if (!file.file_path) throw new MediaError("download", "getFile returned no file_path");
    const url = `${apiRoot}/file/bot${token}/${file.file_path}`;
    let response: Response;
    try {
      response = await fetchFn(url, { signal });
    } catch (error) {
      if (signal?.aborted) throw new MediaError("stopped", "stopped while downloading");
      throw new MediaError(
        "download",
        `downloading the file failed: ${scrub(String((error as Error)?.message ?? error), url)}`,
      );
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new MediaError("download", `downloading the file failed: HTTP ${response.status}`);
    }
    const declared = Number(response.headers.get("content-length") ?? NaN);
    if (declared > maxBytes) {
      await response.body?.cancel();
      throw new MediaError("tooBig", `the file has ${declared} bytes`, {
        size: declared,
        maxBytes,
      });
    }
    return await readAtMost(response, maxBytes, signal);
  };
}

async function readAtMost(
  response: Response,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body ?? []) {
      total += chunk.length;
      if (total > maxBytes) {
        throw new MediaError("tooBig", `the file has more than ${maxBytes} bytes`, { maxBytes });
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof MediaError) throw error;
    if (signal?.aborted) throw new MediaError("stopped", "stopped while downloading");
    throw new MediaError("download", `the download broke off: ${(error as Error)?.name}`);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}
