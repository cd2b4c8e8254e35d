/**
 * Long polling with @grammyjs/runner: updates are fetched in the background and
 * handled concurrently across users; `sequentialize` in the bot keeps each user's
 * updates in order. A stale webhook is deleted first (getUpdates is refused while one
 * is set).
 */
import type { Bot } from "grammy";
import { run, type RunnerHandle } from "@grammyjs/runner";
import type { Logger } from "@logtape/logtape";
import { ALLOWED_UPDATES } from "../bot/bot.ts";
import type { BotContext } from "../bot/context.ts";

export interface Polling {
  /** Stops fetching and resolves when running handlers finish or `timeoutMs` passes. */
  stop(timeoutMs: number): Promise<"drained" | "timeout">;
}

/** Starts long polling; resolves once the runner is fetching. */
export async function startPolling(bot: Bot<BotContext>, log: Logger): Promise<Polling> {
  // Updates that were waiting stay queued: dropping them would lose messages.
  await bot.api.deleteWebhook({ drop_pending_updates: false });
  const handle: RunnerHandle = run(bot, {
    runner: {
      fetch: { allowed_updates: [...ALLOWED_UPDATES], timeout: 30 },
      // Keep retrying getUpdates through network failures instead of crashing.
      retryInterval: "exponential",
      maxRetryTime: Infinity,
    },
    sink: { concurrency: 500 },
  });
  log.info("Polling as @{username}", { username: bot.botInfo.username });
  return {
    async stop(timeoutMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      });
      const drained = handle.stop().then(() => "drained" as const);
      try {
        return await Promise.race([drained, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
