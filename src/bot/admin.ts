/**
 * Admin commands, for `ADMIN_USER_IDS` only: /stats, /limits, /reset_user <id>,
 * /drop_cache <id>. To anyone else they do not exist: the update passes on and is
 * treated like any unknown command, so nothing reveals them.
 */
import { Composer } from "grammy";
import type { Logger } from "@logtape/logtape";
import type { AccessChecker } from "../access.ts";
import type { Assistant } from "../assistant/assistant.ts";
import { dayOf, type LimitsConfig } from "../limits.ts";
import type { Stats } from "../stats.ts";
import type { BotContext } from "./context.ts";
import { operatorTexts } from "./limit_texts.ts";
import { langOf } from "./texts.ts";

export const ADMIN_COMMANDS = ["stats", "limits", "reset_user", "drop_cache"] as const;

export interface AdminOptions {
  adminIds: number[];
  stats: Stats;
  limits: LimitsConfig;
  assistant: Assistant;
  access: AccessChecker;
  storeKind: string;
  log: Logger;
  now?: () => number;
}

/** Parses the user id argument of /reset_user and /drop_cache. */
export function parseUserId(match: string): number | undefined {
  const id = match.trim();
  return /^\d{1,20}$/.test(id) ? Number(id) : undefined;
}

/** The admin composer; install it in the private-chat chain. */
export function createAdmin(options: AdminOptions): Composer<BotContext> {
  const { stats, log } = options;
  const now = options.now ?? Date.now;
  const startedAt = now();
  const admins = new Set(options.adminIds);
  const composer = new Composer<BotContext>();
  const admin = composer.filter((ctx) => ctx.from !== undefined && admins.has(ctx.from.id));
  const texts = (ctx: BotContext) => operatorTexts(langOf(ctx.from?.language_code));

  admin.command("stats", async (ctx) => {
    const report = await stats.today();
    await ctx.reply(
      texts(ctx).stats(report, {
        uptimeSeconds: Math.round((now() - startedAt) / 1000),
        store: options.storeKind,
        resetsAt: dayOf(now(), options.limits.resetHourUtc).endsAt,
      }),
    );
  });

  admin.command("limits", (ctx) => ctx.reply(texts(ctx).limits(options.limits)));

  /** An admin command that acts on the user id given as its argument. */
  const onUser = (
    command: "reset_user" | "drop_cache",
    action: (id: number) => Promise<void>,
    done: string,
    reply: (ctx: BotContext, id: number) => string,
  ) =>
    admin.command(command, async (ctx) => {
      const id = parseUserId(ctx.match);
      if (id === undefined) return void await ctx.reply(texts(ctx).needsId(command));
      await action(id);
      log.info("Admin {admin}: {done} of {userId}", { admin: ctx.from!.id, done, userId: id });
      await ctx.reply(reply(ctx, id));
    });

  onUser(
    "reset_user",
    (id) => options.assistant.reset(id),
    "reset the conversation",
    (ctx, id) => texts(ctx).userReset(id),
  );
  onUser(
    "drop_cache",
    (id) => options.access.forget(id),
    "dropped the subscription cache",
    (ctx, id) => texts(ctx).cacheDropped(id),
  );

  return composer;
}
