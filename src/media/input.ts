/**
 * A media plan (`classify.ts`) turned into model input: each file downloaded into
 * memory (`download.ts`), audio transcribed (`transcribe.ts`), images typed from
 * their bytes, and the text, label and transcripts put together:
 *
 * - text (what the model reads): each transcript after its marker
 *   (`[voice 0:12] …`), then the caption;
 * - label (what a kept history stores and /history shows): the image and file
 *   markers before that text (`[2 photos] caption`, `[file report.pdf]`);
 * - images and files: the bytes, for this one request.
 *
 * Files are fetched one after another, so at most one download is in flight per
 * answer. Nothing is written to disk or logged.
 */
import type { InputFile, InputImage, UserInput } from "../assistant/assistant.ts";
import { maxBytesFor, type MediaPlan, type PlanLimits } from "./classify.ts";
import type { Download } from "./download.ts";
import { MediaError } from "./errors.ts";
import { audioMarker, fileMarker, imagesMarker, withMarkers } from "./label.ts";
import type { Transcribe } from "./transcribe.ts";

/** What {@link prepareInput} made of a plan. */
export interface PreparedInput {
  input: UserInput;
  /** The transcripts, to show the user what was understood. */
  transcripts: string[];
}

export interface PrepareDeps {
  download: Download;
  transcribe: Transcribe;
  limits: PlanLimits;
}

/** An image's type from its first bytes: PNG, JPEG, GIF or WebP; undefined otherwise. */
export function sniffImage(data: Uint8Array): string | undefined {
  const at = (i: number, bytes: number[]) => bytes.every((b, j) => data[i + j] === b);
  if (at(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (at(0, [0xff, 0xd8, 0xff])) return "image/jpeg";
  if (at(0, [0x47, 0x49, 0x46, 0x38])) return "image/gif";
  if (at(0, [0x52, 0x49, 0x46, 0x46]) && at(8, [0x57, 0x45, 0x42, 0x50])) return "image/webp";
  return undefined;
}

/**
 * Downloads and transcribes what the plan names. Rejects with a {@link MediaError}
 * (kind `stopped` when `signal` aborted); what was transcribed before a later failure
 * is still reported through `onAudio` (it was billed).
 */
export async function prepareInput(
  plan: MediaPlan,
  deps: PrepareDeps,
  signal?: AbortSignal,
  onAudio?: (seconds: number) => void,
): Promise<PreparedInput> {
  const images: InputImage[] = [];
  const files: InputFile[] = [];
  const transcripts: string[] = [];
  const lines: string[] = [];
  for (const item of plan.items) {
    if (signal?.aborted) throw new MediaError("stopped", "stopped before the next file");
    const data = await deps.download(item.fileId, maxBytesFor(item, deps.limits), signal);
    if (item.kind === "audio") {
      const text = await deps.transcribe(
        { data, filename: item.filename, mime: item.mime },
        signal,
      );
      onAudio?.(item.seconds);
      transcripts.push(text);
      lines.push(`${audioMarker(item.audio, item.seconds)} ${text}`);
    } else if (item.kind === "image") {
      const mime = sniffImage(data);
      if (!mime) throw new MediaError("fileType", "the image is not PNG, JPEG, GIF or WebP");
      images.push({ mime, data });
    } else {
      files.push({ name: item.name, mime: item.mime, data });
    }
  }
  const text = [...lines, plan.caption].filter(Boolean).join("\n");
  const label = withMarkers(
    [imagesMarker(images.length), ...files.map((f) => fileMarker(f.name))],
    text,
  );
  return {
    input: {
      text,
      ...(images.length ? { images } : {}),
      ...(files.length ? { files } : {}),
      ...(label !== text ? { label } : {}),
    },
    transcripts,
  };
}
