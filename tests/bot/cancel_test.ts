/**
 * The stop/cancel registry and the turn bypass, on hand-made updates.
 */
import assert from "node:assert/strict";
import { Api, Context } from "grammy";
import type { Update, UserFromGetMe } from "grammy/types";
import { AnswerRegistry, bypassesTurn, isCancelCommand } from "../../src/bot/cancel.ts";
import { turnKey } from "../../src/bot/bot.ts";

const me = {
  id: 42,
  is_bot: true,
  first_name: "Bot",
  username: "my_bot",
} as UserFromGetMe;
const api = new Api("42:TEST-token_abcdefghijklmnopqrstuvwxyz");
const user = { id: 7, is_bot: false, first_name: "Ann" };

function ctx(update: Omit<Update, "update_id">): Context {
  return new Context({ update_id: 1, ...update } as Update, api, me);
}

function text(body: string, chat: "private" | "group" = "private"): Context {
  const command = /^\/\w+(@\w+)?/.exec(body);
  return ctx({
    message: {
      message_id: 1,
      date: 0,
      chat: chat === "private"
        ? { id: user.id, type: "private", first_name: "Ann" }
        : { id: -5, type: "group", title: "G" },
      from: user,
      text: body,
      ...(command
        ? { entities: [{ type: "bot_command", offset: 0, length: command[0].length }] }
        : {}),
    },
  } as Omit<Update, "update_id">);
}

const stop = ctx({
  stopped_message_generation: {
    chat: { id: user.id, type: "private", first_name: "Ann" },
    draft_id: 9,
  },
});

Deno.test("bypassesTurn: the stop button and a private /cancel skip the turn order", () => {
  assert.equal(bypassesTurn(stop), true);
  assert.equal(bypassesTurn(text("/cancel")), true);
  assert.equal(bypassesTurn(text("/cancel@my_bot")), true);
  assert.equal(bypassesTurn(text("/cancel@My_Bot please")), true);
  assert.equal(isCancelCommand(text("/cancel@other_bot")), false);
  assert.equal(bypassesTurn(text("/cancel", "group")), false);
  assert.equal(bypassesTurn(text("/cancelled")), false);
  assert.equal(bypassesTurn(text("please /cancel")), false);
  assert.equal(bypassesTurn(text("hello")), false);
  // The turn key follows: none for the bypassing updates, the user for the rest.
  assert.equal(turnKey(stop), undefined);
  assert.equal(turnKey(text("/cancel")), undefined);
  assert.equal(turnKey(text("hello")), "7");
});

Deno.test("AnswerRegistry: cancel aborts the running answer once; a stop needs its draft", () => {
  const registry = new AnswerRegistry();
  assert.equal(registry.cancel(7), false);
  const first = registry.begin(7);
  first.addDraft(9);
  assert.equal(registry.isRunning(7), true);
  assert.equal(registry.cancel(7, 8), false, "a stop on another draft");
  assert.equal(first.signal.aborted, false);
  assert.equal(registry.cancel(7, 9), true);
  assert.equal(first.signal.aborted, true);
  assert.equal(registry.cancel(7), false, "already aborted");
  first.end();
  assert.equal(registry.isRunning(7), false);

  // A newer answer is not ended by an older one's end().
  const older = registry.begin(8);
  const newer = registry.begin(8);
  older.end();
  assert.equal(registry.isRunning(8), true);
  assert.equal(registry.cancel(8), true);
  assert.equal(newer.signal.aborted, true);
  assert.equal(older.signal.aborted, false);
});
