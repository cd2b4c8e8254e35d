/**
 * Reasoning that never reaches the user as answer text. Reasoning models behind
 * OpenAI-compatible servers (DeepSeek-R1, Qwen3, QwQ under vLLM, llama.cpp, Ollama…)
 * often write their thoughts into the answer as `<think>…</think>` before it; the
 * servers that split them out send `reasoning_content` (or `reasoning`) deltas instead,
 * which the backends never read.
 *
 * What is removed: `<think>` blocks at the start of the answer (after optional
 * whitespace), one or several, and the whitespace right after them. A `<think>` later
 * in the text is the answer's own (a model explaining HTML, say) and is kept. A block
 * that never closes is all reasoning: nothing of it is shown.
 */

const OPEN = "<think>";
const CLOSE = "</think>";

/**
 * A streaming filter: `push` each delta and show what it returns, then `end()` once.
 * Tags split across deltas (`"<thi"`, `"nk>…</th"`, `"ink>"`) are recognised; text that
 * may still turn out to be a tag is held back until it is decided.
 *
 * ```ts
 * const filter = new ThinkFilter();
 * for await (const delta of deltas) show(filter.push(delta));
 * show(filter.end());
 * ```
 */
export class ThinkFilter {
  #state: "lead" | "think" | "pass" = "lead";
  #buffer = "";
  #sawThink = false;

  /** The visible part of `delta` (possibly with held-back text of earlier deltas). */
  push(delta: string): string {
    if (this.#state === "pass") return delta;
    this.#buffer += delta;
    let out = "";
    while (this.#buffer) {
      if (this.#state === "pass") {
        out += this.#buffer;
        this.#buffer = "";
      } else if (this.#state === "think") {
        const end = this.#buffer.indexOf(CLOSE);
        if (end < 0) {
          // Keep what could be the start of a split closing tag.
          this.#buffer = this.#buffer.slice(-(CLOSE.length - 1));
          break;
        }
        this.#buffer = this.#buffer.slice(end + CLOSE.length);
        this.#state = "lead";
      } else {
        const rest = this.#buffer.trimStart();
        if (rest.startsWith(OPEN)) {
          this.#buffer = rest.slice(OPEN.length);
          this.#state = "think";
          this.#sawThink = true;
        } else if (rest === "" || OPEN.startsWith(rest)) {
          break; // Whitespace, or a tag still arriving.
        } else {
          this.#state = "pass";
          if (this.#sawThink) this.#buffer = rest;
        }
      }
    }
    return out;
  }

  /** What was held back and is answer text after all (a lone `"<thi"`); call once at the end. */
  end(): string {
    const held = this.#state === "lead" && !this.#sawThink ? this.#buffer : "";
    this.#buffer = "";
    this.#state = "pass";
    return held;
  }
}

/** A whole text without its leading `<think>` blocks (for history read back from a server). */
export function stripThink(text: string): string {
  const filter = new ThinkFilter();
  return filter.push(text) + filter.end();
}
