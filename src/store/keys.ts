/** Storage keys, compatible with the Python bot's Redis so an operator can reuse it. */
export const keys = {
  /** The user's conversation (Responses) or thread (Assistants) id; no expiry. */
  conversation: (userId: number) => `thread_id:${userId}`,
  /** `"true"` / `"false"`, with a TTL. */
  subscription: (userId: number) => `subscription:${userId}`,
  /**
   * The history the bot keeps with `OPENAI_API=responses` or `chat` (JSON; see
   * `src/assistant/history.ts`). TTL: `HISTORY_TTL_DAYS` (default 30), set again on
   * every turn; /reset deletes it at once.
   */
  history: (userId: number) => `history:${userId}`,
  /** One part of a history too large for one value; same TTL as `history`. */
  historyPart: (userId: number, generation: string, n: number) =>
    `history:${userId}:${generation}:${n}`,
};
