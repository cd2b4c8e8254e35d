import type { Context } from "grammy";
import type { AutoChatActionFlavor } from "@grammyjs/auto-chat-action";
import type { Texts } from "./texts.ts";

/** The bot's context: grammY's, plus the user's texts and the chat-action plugin. */
export type BotContext = Context & AutoChatActionFlavor & { texts: Texts };
