/**
 * What OpenAI learns about who is asking: a salted hash of the Telegram user id, never
 * the id itself. It is sent as `safety_identifier` (OpenAI's abuse detection can then
 * act on one user instead of the whole bot) and as `prompt_cache_key` (requests of one
 * user share a cache bucket, so their long common prefix is billed as cached input).
 */

/** The two per-user fields of a Responses or Chat Completions request. */
export interface UserFields {
  safety_identifier: string;
  prompt_cache_key: string;
}

/**
 * Hashes user ids with HMAC-SHA-256 under `salt` (`SAFETY_ID_SALT`, or the bot token
 * when that is unset: a secret the operator already has, so the hash cannot be
 * reversed by trying every id). The result is 64 hex characters (the field allows 128).
 */
export function userFields(salt: string): (userId: number) => Promise<UserFields> {
  const key = crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(salt),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return async (userId) => {
    const mac = await crypto.subtle.sign(
      "HMAC",
      await key,
      new TextEncoder().encode(`telegram-user:${userId}`),
    );
    const hex = Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
    return { safety_identifier: hex, prompt_cache_key: `user-${hex.slice(0, 32)}` };
  };
}
