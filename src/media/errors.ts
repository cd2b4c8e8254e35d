/**
 * Why turning a voice note, photo or file into model input failed, in the terms the
 * user's text needs (`texts.media`): each kind has its own localized text. The message
 * is for the operator's log and never holds the file URL, the token or the bytes.
 */
export type MediaFailure =
  /** Over a size limit found only at download (`getFile`, or the bytes themselves). */
  | "tooBig"
  /** Telegram did not hand the file over. */
  | "download"
  /** The bytes are not an image format the models take. */
  | "fileType"
  /** The transcription request failed. */
  | "transcription"
  /** The transcription came back without words. */
  | "emptyTranscript"
  /** The transcription server is rate limited or down (the assistant's texts apply). */
  | "rateLimited"
  | "unavailable"
  /** The user pressed stop (or /cancel) before the model was asked. */
  | "stopped";

/** A failure while preparing media; `kind` picks the user's text. */
export class MediaError extends Error {
  constructor(
    readonly kind: MediaFailure,
    message: string,
    readonly sizes: { size?: number; maxBytes?: number } = {},
  ) {
    super(message);
    this.name = "MediaError";
  }
}
