/** Storage keys, compatible with the Python bot's Redis so an operator can reuse it. */
export const keys = {
  /** The user's conversation (Responses) or thread (Assistants) id; no expiry. */
  conversation: (userId: number) => `thread_id:${userId}`,
  /** `"true"` / `"false"`, with a TTL. */
  subscription: (userId: number) => `subscription:${userId}`,
};
