/**
 * The subscription gate's decisions: is this user subscribed to every configured
 * channel? Results are cached in the store under `subscription:{user_id}` as
 * `"true"` / `"false"` (the Python bot's format): positive ones for
 * `SUBSCRIPTION_CACHE_TTL`, negative ones briefly so a user who just joined gets in.
 *
 * A Telegram error (the bot is not an admin of the channel, a wrong channel id) is
 * never cached and never reported to the user as "not subscribed": the verdict is
 * `unavailable` and the operator gets an ERROR naming the fix. A store failure
 * only skips the cache.
 */
import type { Logger } from "@logtape/logtape";
import type { ChatMember } from "grammy/types";
import { GrammyError } from "grammy";
import type { Store } from "./store/store.ts";
import { keys } from "./store/keys.ts";

/** `allowed`: subscribed everywhere; `denied`: missing somewhere; `unavailable`: cannot tell. */
export type Verdict = "allowed" | "denied" | "unavailable";

export interface AccessOptions {
  getChatMember: (chat: string | number, userId: number) => Promise<ChatMember>;
  store: Store;
  channels: (string | number)[];
  /** `all`: subscribed to every channel (default); `any`: to at least one. */
  mode?: "all" | "any";
  ttlSeconds: number;
  negativeTtlSeconds: number;
  log: Logger;
  /** Called for each check, for metrics: `hit` when the cache answered. */
  onCheck?: (source: "hit" | "miss") => void;
}

export interface AccessChecker {
  /** The channels a user must be subscribed to, as configured. */
  readonly channels: readonly (string | number)[];
  /** The verdict for a user; `fresh` bypasses the cache (the "Check again" button). */
  check(userId: number, options?: { fresh?: boolean }): Promise<Verdict>;
  /** Drops the cached verdict. */
  forget(userId: number): Promise<void>;
  /**
   * Follows a `chat_member` update from a channel (the bot must be its admin): a
   * leaver loses access at once, a joiner is let in without waiting for the TTL.
   * Updates from other chats are ignored.
   */
  observe(chat: { id: number; username?: string }, member: ChatMember): Promise<void>;
}

/** Whether a configured channel (`@name` or id) is this chat. */
export function isChannel(channel: string | number, chat: { id: number; username?: string }) {
  return typeof channel === "number"
    ? channel === chat.id
    : chat.username !== undefined && channel.slice(1).toLowerCase() === chat.username.toLowerCase();
}

/** Whether a chat member counts as subscribed. */
export function isSubscribed(member: ChatMember): boolean {
  switch (member.status) {
    case "creator":
    case "administrator":
    case "member":
      return true;
    case "restricted":
      return member.is_member;
    default:
      return false;
  }
}

/** How the operator fixes a getChatMember error, from Telegram's description. */
export function fixFor(description: string): string {
  if (/member list is inaccessible|not enough rights|CHAT_ADMIN_REQUIRED/i.test(description)) {
    return "make the bot an administrator of the channel";
  }
  if (/chat not found|PEER_ID_INVALID|CHANNEL_INVALID|CHANNEL_PRIVATE/i.test(description)) {
    return "check CHANNEL_ID (the @username or the -100… id) and that the bot is in the channel";
  }
  return "check CHANNEL_ID and the bot's admin rights in the channel";
}

/** The verdict from each channel's answer (`undefined`: Telegram could not tell). */
export function decide(results: (boolean | undefined)[], mode: "all" | "any"): Verdict {
  if (mode === "any") {
    if (results.some((r) => r === true)) return "allowed";
    return results.some((r) => r === undefined) ? "unavailable" : "denied";
  }
  if (results.some((r) => r === false)) return "denied";
  return results.some((r) => r === undefined) ? "unavailable" : "allowed";
}

/** Creates the checker. */
export function createAccessChecker(options: AccessOptions): AccessChecker {
  const { store, channels, log } = options;
  const reported = new Map<string, number>();

  async function cached(userId: number): Promise<Verdict | undefined> {
    try {
      const value = await store.get(keys.subscription(userId));
      if (value === "true") return "allowed";
      if (value === "false") return "denied";
    } catch {
      // The store logs its own outage once; check without the cache.
    }
    return undefined;
  }

  async function remember(userId: number, verdict: "allowed" | "denied"): Promise<void> {
    const ttl = verdict === "allowed" ? options.ttlSeconds : options.negativeTtlSeconds;
    try {
      await store.set(keys.subscription(userId), verdict === "allowed" ? "true" : "false", ttl);
    } catch {
      // Not cached this time; the next message checks again.
    }
  }

  function reportOnce(channel: string | number, error: Error) {
    const description = error instanceof GrammyError ? error.description : error.message;
    const key = `${channel}:${description}`;
    const now = Date.now();
    if ((reported.get(key) ?? 0) > now - 60_000) return;
    reported.set(key, now);
    log.error(
      "Cannot check subscriptions to {channel}: {description}. Fix: {fix}.",
      { channel: String(channel), description, fix: fixFor(description) },
    );
  }

  async function check(userId: number, opts: { fresh?: boolean } = {}): Promise<Verdict> {
    if (!opts.fresh) {
      const hit = await cached(userId);
      if (hit) {
        options.onCheck?.("hit");
        return hit;
      }
    }
    options.onCheck?.("miss");
    const results = await Promise.all(channels.map(async (channel) => {
      try {
        return isSubscribed(await options.getChatMember(channel, userId));
      } catch (error) {
        reportOnce(channel, error as Error);
        return undefined;
      }
    }));
    const verdict = decide(results, options.mode ?? "all");
    if (verdict !== "unavailable") await remember(userId, verdict);
    return verdict;
  }

  async function forget(userId: number): Promise<void> {
    await store.delete(keys.subscription(userId));
  }

  async function observe(chat: { id: number; username?: string }, member: ChatMember) {
    if (!channels.some((channel) => isChannel(channel, chat))) return;
    const subscribed = isSubscribed(member);
    // With one channel the update settles the verdict; with several, only when it
    // decides alone (leaving under "all", joining under "any"). Otherwise re-check.
    const decisive = channels.length === 1 || (options.mode === "any") === subscribed;
    if (decisive) await remember(member.user.id, subscribed ? "allowed" : "denied");
    else await forget(member.user.id).catch(() => {});
  }

  return { channels, check, forget, observe };
}
