/**
 * What a Bot API error means for the caller, from grammY's `GrammyError`: a method the
 * server lacks, content Telegram refused, formatting it could not parse, an edit that
 * changed nothing. Every fallback in the preview and delivery paths is decided here.
 */
import { GrammyError } from "grammy";

/** Whether the error is the Bot API's 404 for a method it does not have. */
export function isMissingMethod(error: unknown): boolean {
  return error instanceof GrammyError && error.error_code === 404;
}

/** Whether Telegram refused the request's content (400 Bad Request). */
export function isBadRequest(error: unknown): error is GrammyError {
  return error instanceof GrammyError && error.error_code === 400;
}

/** Whether Telegram refused a message's formatting (not its length or its chat). */
export function isEntityError(error: unknown): boolean {
  return isBadRequest(error) &&
    /can't parse entities|unsupported start tag|can't find end tag/i.test(error.description);
}

/** Whether the user blocked the bot, or the chat is gone: nothing sent there can arrive. */
export function isUnreachableChat(error: unknown): boolean {
  return error instanceof GrammyError &&
    (error.error_code === 403 || /chat not found|user is deactivated/i.test(error.description));
}

/** Whether an edit changed nothing (Telegram refuses it; the message already shows it). */
export function isNotModified(error: unknown): boolean {
  return isBadRequest(error) && /message is not modified/i.test(error.description);
}
