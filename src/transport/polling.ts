/**
 * Long polling with @grammyjs/runner: updates are fetched in the background and
 * handled concurrently across users; `sequentialize` in the bot keeps each user's
 * updates in order. A stale webhook is deleted first (getUpdates is refused while one
 * is set).
 *
 * The runner's parts are assembled here rather than with `run()` so every update's
 * handling is tracked: `run().stop()` resolves once fetching stops, not once running
 * answers finish. Stopping waits for them, bounded. The runner asks for the next batch
 * (getUpdates with a higher offset, which confirms the previous one) while the previous
 * batch is still being answered, so each batch goes into the inbox first.
 */
import { type Bot, BotError } from "grammy";
import type { Update } from "grammy/types";
import {
  createConcurrentSink,
  createRunner,
  createSource,
  createUpdateFetcher,
} from "@grammyjs/runner";
import type { Logger } from "@logtape/logtape";
import { ALLOWED_UPDATES } from "../bot/bot.ts";
import type { BotContext } from "../bot/context.ts";
import { InFlight } from "./inflight.ts";
import type { Inbox } from "../inbox.ts";

export interface Polling {
  /**
   * Stops fetching and waits for running answers, at most `timeoutMs`; resolves
   * `"timeout"` when answers were still running then (they are left to be cut off).
   */
  stop(timeoutMs: number): Promise<"drained" | "timeout">;
}

/**
 * Starts long polling; resolves once the runner is fetching. Each batch is recorded in
 * the inbox before the runner asks for the next one (which confirms it to Telegram),
 * and updates orphaned by a process that died are taken over from the inbox.
 */
export async function startPolling(
  bot: Bot<BotContext>,
  inbox: Inbox,
  log: Logger,
): Promise<Polling> {
  // Updates that were waiting stay queued: dropping them would lose messages.
  await bot.api.deleteWebhook({ drop_pending_updates: false });
  const inFlight = new InFlight();

  const fetchUpdates = createUpdateFetcher(bot, {
    fetch: { allowed_updates: [...ALLOWED_UPDATES], timeout: 30 },
    // Keep retrying getUpdates through network failures instead of crashing. The
    // pause grows by 0.1 s per failure: "exponential" doubles without a cap, so
    // after an hour-long outage the next attempt would be an hour away.
    retryInterval: "quadratic",
    maxRetryTime: Infinity,
  });
  const source = createSource({
    supply: async (batchSize, signal) => {
      const updates = await fetchUpdates(batchSize, signal);
      await inbox.record(updates);
      return updates;
    },
  });
  const handle = (update: Update) => inFlight.track(bot.handleUpdate(update));
  const sink = createConcurrentSink<Update, unknown>(
    {
      consume: handle,
    },
    async (error) => {
      if (error instanceof BotError) await bot.errorHandler(error);
      else log.error("Polling: an update failed outside the bot: {error}", { error });
    },
    { concurrency: 500 },
  );
  const runner = createRunner(source, sink);
  await inbox.start((update) =>
    handle(update).catch(async (error) => {
      if (error instanceof BotError) await bot.errorHandler(error);
      else throw error;
    })
  );
  runner.start();
  log.info("Polling as @{username}", { username: bot.botInfo.username });

  return {
    async stop(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      await runner.stop();
      await inbox.stop();
      return await inFlight.drain(Math.max(0, deadline - Date.now()));
    },
  };
}
