/**
 * Texts for usage limits, /usage and the admin commands, in English and Russian
 * (kept apart from `texts.ts` because they are built from numbers and dates).
 */
import type { Refusal, UsageReport } from "../limits.ts";
import type { StatsReport } from "../stats.ts";
import type { Lang } from "./texts.ts";
import { clock } from "../media/label.ts";

const when = (date: Date) => `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
const num = (n: number) => n.toLocaleString("en-US");

export interface OperatorTexts {
  refusal(refusal: Refusal): string;
  usage(report: UsageReport): string;
  stats(
    report: StatsReport,
    extra: { uptimeSeconds: number; store: string; resetsAt: Date },
  ): string;
  limits(report: UsageReport["limits"]): string;
  userReset(id: number): string;
  cacheDropped(id: number): string;
  needsId(command: string): string;
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m` : `${m}m ${Math.floor(seconds % 60)}s`;
}

function hitRatio(hits: number, misses: number): string {
  const total = hits + misses;
  return total ? `${Math.round((hits / total) * 100)}% (${hits}/${total})` : "—";
}

const en: OperatorTexts = {
  refusal: (r) => {
    switch (r.limit) {
      case "length":
        return `Your message is too long: at most ${
          num(r.max)
        } characters. Please shorten it or split it.`;
      case "flood":
        return `Too many messages: at most ${r.max} a minute. Please wait until ${
          when(r.resetsAt!)
        }.`;
      case "answers":
        return `You've used today's ${r.max} answers. The limit resets at ${when(r.resetsAt!)}.`;
      case "tokens":
        return `You've used today's ${num(r.max)} tokens. The limit resets at ${
          when(r.resetsAt!)
        }.`;
      case "global":
        return `The bot has used its budget for today. It resets at ${when(r.resetsAt!)}.`;
      case "audio":
        return `Voice and audio are limited to ${clock(r.max)} a day, and this message would ` +
          `pass it (used today: ${clock(r.used ?? 0)}). The limit resets at ${
            when(r.resetsAt!)
          }; you can write in the meantime.`;
    }
  },
  usage: (u) =>
    `Your usage today:\n` +
    `• answers: ${u.answersToday}${
      u.limits.answersPerDay ? ` of ${u.limits.answersPerDay}` : ""
    }\n` +
    `• tokens: ${num(u.tokensToday)}${
      u.limits.tokensPerDay ? ` of ${num(u.limits.tokensPerDay)}` : ""
    }\n` +
    `• voice and audio: ${clock(u.audioSecondsToday)}${
      u.limits.audioSecondsPerDay ? ` of ${clock(u.limits.audioSecondsPerDay)}` : ""
    }\n` +
    `• files: ${u.filesToday}\n` +
    `Resets at ${when(u.resetsAt)}.`,
  stats: (s, x) =>
    `Today (until ${when(x.resetsAt)}):\n` +
    `• users: ${s.users_today} today, ${s.users_total} in total\n` +
    `• answers: ${s.answers}\n` +
    `• tokens: ${num(s.tokens_in)} in, ${num(s.tokens_out)} out\n` +
    `• voice and audio: ${clock(s.audio_seconds)}, files: ${s.files}\n` +
    `• subscription cache hits: ${hitRatio(s.cache_hit, s.cache_miss)}\n` +
    `• errors: OpenAI ${s.errors_openai}, Telegram ${s.errors_telegram}\n` +
    `Uptime ${duration(x.uptimeSeconds)}, store: ${x.store}.`,
  limits: (l) =>
    `Limits in force:\n` +
    `• messages per minute per user: ${l.messagesPerMinute ?? "off"}\n` +
    `• answers per day per user: ${l.answersPerDay ?? "off"}\n` +
    `• tokens per day per user: ${l.tokensPerDay ? num(l.tokensPerDay) : "off"}\n` +
    `• tokens per day, whole bot: ${l.globalTokensPerDay ? num(l.globalTokensPerDay) : "off"}\n` +
    `• voice and audio per day per user: ${
      l.audioSecondsPerDay ? clock(l.audioSecondsPerDay) : "off"
    }\n` +
    `• longest message: ${num(l.maxMessageChars)} characters\n` +
    `• largest file: ${l.maxFileMb} MB\n` +
    `Days reset at ${String(l.resetHourUtc).padStart(2, "0")}:00 UTC; admins are exempt.`,
  userReset: (id) => `User ${id}: conversation forgotten; their next message starts a new one.`,
  cacheDropped: (id) =>
    `User ${id}: cached subscription status dropped; the next message re-checks.`,
  needsId: (command) => `Usage: /${command} <user id>`,
};

const ru: OperatorTexts = {
  refusal: (r) => {
    switch (r.limit) {
      case "length":
        return `Сообщение слишком длинное: не больше ${
          num(r.max)
        } символов. Сократите или разбейте его.`;
      case "flood":
        return `Слишком много сообщений: не больше ${r.max} в минуту. Подождите до ${
          when(r.resetsAt!)
        }.`;
      case "answers":
        return `На сегодня исчерпан лимит ответов (${r.max}). Он обновится ${when(r.resetsAt!)}.`;
      case "tokens":
        return `На сегодня исчерпан лимит токенов (${num(r.max)}). Он обновится ${
          when(r.resetsAt!)
        }.`;
      case "global":
        return `Бот исчерпал дневной бюджет. Он обновится ${when(r.resetsAt!)}.`;
      case "audio":
        return `Голосовые и аудио ограничены ${clock(r.max)} в день, и это сообщение превысит ` +
          `лимит (сегодня уже ${clock(r.used ?? 0)}). Он обновится ${
            when(r.resetsAt!)
          }; а пока можно писать текстом.`;
    }
  },
  usage: (u) =>
    `Ваше использование сегодня:\n` +
    `• ответов: ${u.answersToday}${
      u.limits.answersPerDay ? ` из ${u.limits.answersPerDay}` : ""
    }\n` +
    `• токенов: ${num(u.tokensToday)}${
      u.limits.tokensPerDay ? ` из ${num(u.limits.tokensPerDay)}` : ""
    }\n` +
    `• голосовых и аудио: ${clock(u.audioSecondsToday)}${
      u.limits.audioSecondsPerDay ? ` из ${clock(u.limits.audioSecondsPerDay)}` : ""
    }\n` +
    `• файлов: ${u.filesToday}\n` +
    `Обновится ${when(u.resetsAt)}.`,
  stats: (s, x) =>
    `Сегодня (до ${when(x.resetsAt)}):\n` +
    `• пользователей: ${s.users_today} сегодня, ${s.users_total} всего\n` +
    `• ответов: ${s.answers}\n` +
    `• токенов: ${num(s.tokens_in)} на входе, ${num(s.tokens_out)} на выходе\n` +
    `• голосовых и аудио: ${clock(s.audio_seconds)}, файлов: ${s.files}\n` +
    `• попаданий в кэш подписок: ${hitRatio(s.cache_hit, s.cache_miss)}\n` +
    `• ошибок: OpenAI ${s.errors_openai}, Telegram ${s.errors_telegram}\n` +
    `Работает ${duration(x.uptimeSeconds)}, хранилище: ${x.store}.`,
  limits: (l) =>
    `Действующие лимиты:\n` +
    `• сообщений в минуту на пользователя: ${l.messagesPerMinute ?? "нет"}\n` +
    `• ответов в день на пользователя: ${l.answersPerDay ?? "нет"}\n` +
    `• токенов в день на пользователя: ${l.tokensPerDay ? num(l.tokensPerDay) : "нет"}\n` +
    `• токенов в день на весь бот: ${l.globalTokensPerDay ? num(l.globalTokensPerDay) : "нет"}\n` +
    `• голосовых и аудио в день на пользователя: ${
      l.audioSecondsPerDay ? clock(l.audioSecondsPerDay) : "нет"
    }\n` +
    `• самое длинное сообщение: ${num(l.maxMessageChars)} символов\n` +
    `• самый большой файл: ${l.maxFileMb} МБ\n` +
    `Сутки начинаются в ${
      String(l.resetHourUtc).padStart(2, "0")
    }:00 UTC; на админов лимиты не действуют.`,
  userReset: (id) => `Пользователь ${id}: разговор забыт, следующее сообщение начнёт новый.`,
  cacheDropped: (id) =>
    `Пользователь ${id}: статус подписки сброшен, следующее сообщение проверит заново.`,
  needsId: (command) => `Использование: /${command} <id пользователя>`,
};

/** The operator texts for a language. */
export function operatorTexts(lang: Lang): OperatorTexts {
  return lang === "ru" ? ru : en;
}
