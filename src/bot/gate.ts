/**
 * The access gate as grammY middleware. `gate.protect` lets a private-chat update
 * through only for subscribers; everyone else gets one message with a button per
 * channel and a "Check again" button. The button (callback `recheck`) and
 * /subscribe bypass the cache; on success the gate message turns into the welcome.
 */
import { type Api, Composer, InlineKeyboard, type MiddlewareFn } from "grammy";
import type { Logger } from "@logtape/logtape";
import type { AccessChecker } from "../access.ts";
import type { BotContext } from "./context.ts";
import type { Texts } from "./texts.ts";

export const RECHECK = "recheck";

interface ChannelInfo {
  title: string;
  url?: string;
}

/** Looks up each channel's title and link once per process (they rarely change). */
export function channelDirectory(channels: readonly (string | number)[], log: Logger) {
  let cache: Promise<ChannelInfo[]> | undefined;
  const lookup = (api: Api) =>
    Promise.all(channels.map(async (channel): Promise<ChannelInfo> => {
      const fallbackUrl = typeof channel === "string"
        ? `https://t.me/${channel.slice(1)}`
        : undefined;
      try {
        const chat = await api.getChat(channel);
        const title = "title" in chat && chat.title ? chat.title : String(channel);
        const username = "username" in chat ? chat.username : undefined;
        const invite = "invite_link" in chat ? chat.invite_link : undefined;
        return { title, url: username ? `https://t.me/${username}` : invite ?? fallbackUrl };
      } catch (error) {
        log.warning("getChat({channel}) failed: {error}", { channel: String(channel), error });
        return { title: String(channel), url: fallbackUrl };
      }
    }));
  return async (api: Api): Promise<ChannelInfo[]> => {
    cache ??= lookup(api);
    const infos = await cache;
    // Retry the lookup next time if it only produced fallbacks.
    if (infos.every((info, i) => info.title === String(channels[i]))) {
      cache = undefined;
    }
    return infos;
  };
}

/** The not-subscribed message: text plus one button per channel and "Check again". */
export function gateMessage(texts: Texts, channels: ChannelInfo[]) {
  const keyboard = new InlineKeyboard();
  for (const channel of channels) {
    if (channel.url) keyboard.url(texts.channelButton(channel.title), channel.url).row();
  }
  keyboard.text(texts.checkAgain, RECHECK);
  const names = channels.map((c) => c.title).join(", ");
  return { text: texts.notSubscribed(names), reply_markup: keyboard };
}

export interface GateOptions {
  access: AccessChecker;
  log: Logger;
}

/** Builds the gate: `protect` middleware plus the composer handling /subscribe and the button. */
export function createGate(options: GateOptions) {
  const { access, log } = options;
  const directory = channelDirectory(access.channels, log);

  async function turnAway(ctx: BotContext, verdict: "denied" | "unavailable") {
    if (verdict === "unavailable") {
      await ctx.reply(ctx.texts.gateUnavailable);
      return;
    }
    const { text, reply_markup } = gateMessage(ctx.texts, await directory(ctx.api));
    await ctx.reply(text, { reply_markup });
  }

  /** Passes subscribers on; answers everyone else. Needs `ctx.from`. */
  const protect: MiddlewareFn<BotContext> = async (ctx, next) => {
    if (!ctx.from) return;
    const verdict = await access.check(ctx.from.id);
    if (verdict === "allowed") return next();
    log.info("User {userId} turned away: {verdict}", { userId: ctx.from.id, verdict });
    await turnAway(ctx, verdict);
  };

  const composer = new Composer<BotContext>();
  const privateChats = composer.chatType("private");

  privateChats.command("subscribe", async (ctx) => {
    const verdict = await access.check(ctx.from.id, { fresh: true });
    if (verdict === "allowed") await ctx.reply(ctx.texts.subscribed);
    else await turnAway(ctx, verdict);
  });

  composer.callbackQuery(RECHECK, async (ctx) => {
    const verdict = await access.check(ctx.from.id, { fresh: true });
    if (verdict === "allowed") {
      await ctx.answerCallbackQuery({ text: ctx.texts.subscribed });
      await ctx.editMessageText(ctx.texts.welcome).catch((error) =>
        log.debug("Could not edit the gate message: {error}", { error })
      );
      return;
    }
    await ctx.answerCallbackQuery({
      text: verdict === "denied" ? ctx.texts.stillNotSubscribed : ctx.texts.gateUnavailable,
      show_alert: true,
    });
  });

  return { protect, composer };
}
