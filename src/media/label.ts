/**
 * The readable markers a media turn leaves in the history, the same on every backend:
 * `[voice 0:12] transcript`, `[photo] caption`, `[3 photos]`, `[file report.pdf]`.
 * /history and /export show them, and the stored history (`responses`, `chat`) keeps
 * them in place of the bytes.
 */

/** What was transcribed: a voice note, an audio file, or a round video note. */
export type AudioKind = "voice" | "audio" | "video_note";

/** `m:ss` (or `h:mm:ss`) for a duration in seconds. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** `[voice 0:12]`, `[audio 3:05]`, `[video note 0:30]`. */
export function audioMarker(kind: AudioKind, seconds: number): string {
  const name = kind === "video_note" ? "video note" : kind;
  return `[${name} ${clock(seconds)}]`;
}

/** `[photo]`, or `[3 photos]`; empty for none. */
export function imagesMarker(count: number): string {
  return count <= 0 ? "" : count === 1 ? "[photo]" : `[${count} photos]`;
}

/** `[file report.pdf]`. */
export function fileMarker(name: string): string {
  return `[file ${name}]`;
}

/** The markers, then the text, separated by spaces (empty parts left out). */
export function withMarkers(markers: string[], text: string): string {
  return [...markers, text.trim()].filter(Boolean).join(" ");
}
