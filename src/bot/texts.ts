/**
 * Every user-facing text, in English and Russian. The language follows the user's
 * Telegram language (`language_code`): Russian for `ru` (and the languages whose
 * speakers usually read it: `uk`, `be`, `kk`), English otherwise.
 */

export type Lang = "en" | "ru";

/** What the user reads when a voice note, photo or file cannot be taken. */
export interface MediaTexts {
  /** A video or an animation. */
  video: string;
  /** A document (or audio file) of a type the bot does not read. */
  fileType: (name: string) => string;
  /** An image document whose bytes are not PNG, JPEG, GIF or WebP. */
  imageType: string;
  /** Over a size limit; sizes in MB, `size` unknown when found only while downloading. */
  tooBig: (size: number | undefined, max: number) => string;
  download: string;
  transcription: string;
  emptyTranscript: string;
}

export interface Texts {
  welcome: string;
  help: string;
  notSubscribed: (channels: string) => string;
  channelButton: (title: string) => string;
  checkAgain: string;
  stillNotSubscribed: string;
  subscribed: string;
  gateUnavailable: string;
  reset: string;
  historyEmpty: string;
  historyTitle: string;
  you: string;
  assistant: string;
  exportEmpty: string;
  exportCaption: string;
  exportTitle: string;
  /** A kind of message the bot does not take (sticker, location, poll, …). */
  unsupported: string;
  /** Texts for voice notes, photos and files. */
  media: MediaTexts;
  /** The backend or the model cannot take images or files (no vision, Assistants API). */
  unsupportedInput: string;
  /** No text could be read from a document where the backend needs its text. */
  unreadableFile: string;
  groupOnly: (username: string) => string;
  rateLimited: string;
  unavailable: string;
  failed: string;
  /** The conversation no longer fits the model's context window: only /reset helps. */
  contextFull: string;
  emptyAnswer: string;
  incomplete: string;
  /** The answer failed: the model sent nothing within the first-token timeout (twice). */
  stalled: string;
  /** Ends the part of an answer that was shown before the model stopped sending. */
  stalledNote: string;
  /** Ends an answer the user stopped (or is the whole answer when nothing was written yet). */
  stopped: string;
  nothingToCancel: string;
  commands: { command: string; description: string }[];
}

const mb = (n: number) => (Math.round(n * 10) / 10).toLocaleString("en-US");

const en: Texts = {
  welcome: "Hi! I'm an AI assistant. Write me anything and I'll answer.\n\n" +
    "/reset starts a new conversation, /history shows the last messages, " +
    "/export downloads the whole conversation, /help lists everything.",
  help: "What I can do:\n" +
    "• just write a message and I'll answer it\n" +
    "• send a voice message (or a round video) and I'll answer what you said\n" +
    "• send photos, PDFs or text files, with a question in the caption\n" +
    "/reset: start a new conversation\n" +
    "/history: the last 10 messages\n" +
    "/export: the conversation as a .txt file (/export md for Markdown)\n" +
    "/cancel: stop the answer being written (or press ■ on it)\n" +
    "/usage: your usage today and the limits\n" +
    "/subscribe: check your channel subscription\n" +
    "/help: this list",
  notSubscribed: (channels) =>
    `This bot is for the subscribers of ${channels}. Join, then press "Check again".`,
  channelButton: (title) => `Open ${title}`,
  checkAgain: "Check again",
  stillNotSubscribed: "Still not subscribed. Join the channel and try again.",
  subscribed: "You're subscribed. Welcome!",
  gateUnavailable:
    "I can't check subscriptions right now. Please try again in a few minutes; the owner has been notified.",
  reset: "Done: the next message starts a new conversation.",
  historyEmpty: "No messages yet. Write me something!",
  historyTitle: "Last messages:",
  you: "You",
  assistant: "Assistant",
  exportEmpty: "There's nothing to export yet.",
  exportCaption: "Your conversation",
  exportTitle: "Conversation with the assistant",
  unsupported: "I can't read this kind of message. I understand text, voice and round video " +
    "messages, audio, photos, PDFs and text files.",
  media: {
    video: "I can't watch videos. Send a voice message or a round video message and I'll " +
      "listen to it, or describe the video in words.",
    fileType: (name) =>
      `I can't read "${name}": this kind of file isn't supported. I take PDFs, text files ` +
      "(txt, md, csv, json, code), images (JPEG, PNG, GIF, WebP) and audio.",
    imageType: "This image format isn't supported: please send a JPEG, PNG, GIF or WebP.",
    tooBig: (size, max) =>
      `This file is too big${size === undefined ? "" : ` (${mb(size)} MB)`}: I can take ` +
      `files up to ${mb(max)} MB.`,
    download: "I couldn't download your file from Telegram. Please send it again.",
    transcription:
      "I couldn't transcribe your voice message. Please send it again, or write it in words.",
    emptyTranscript: "I couldn't make out any words in your voice message. Please send it " +
      "again, or write it in words.",
  },
  unsupportedInput: "The assistant's model can't look at images or read files in this setup. " +
    "Please describe it in words.",
  unreadableFile: "I couldn't read any text in this file (a scanned PDF only has pictures of " +
    "text). Please send a text version, or paste the part you're asking about.",
  groupOnly: (username) =>
    `I answer in private chats only: open @${username} and write to me there.`,
  rateLimited: "The assistant is very busy right now. Please send your message again in a minute.",
  unavailable:
    "The assistant is temporarily unavailable. Please send your message again a bit later.",
  failed: "Something went wrong while answering. Please send your message again.",
  contextFull: "This conversation has grown too long for the assistant to read, so sending " +
    "the message again won't help. Send /reset to start a new conversation " +
    "(/export first if you want to keep this one).",
  emptyAnswer: "The assistant returned an empty answer. Please rephrase your message.",
  incomplete: "(the answer was cut short)",
  stalled:
    "The assistant stopped answering: no reply came in time. Please send your message again.",
  stalledNote: "(the assistant stopped answering here; send your message again for a full answer)",
  stopped: "⏹ Stopped.",
  nothingToCancel: "Nothing to stop: no answer is being written right now.",
  commands: [
    { command: "start", description: "Welcome and what I can do" },
    { command: "reset", description: "Start a new conversation" },
    { command: "history", description: "Show the last messages" },
    { command: "export", description: "Download the conversation" },
    { command: "cancel", description: "Stop the answer being written" },
    { command: "usage", description: "Your usage today" },
    { command: "subscribe", description: "Check the channel subscription" },
    { command: "help", description: "List the commands" },
  ],
};

const ru: Texts = {
  welcome: "Привет! Я ИИ-ассистент. Напишите мне что угодно, и я отвечу.\n\n" +
    "/reset начинает новый разговор, /history показывает последние сообщения, " +
    "/export выгружает весь разговор, /help перечисляет команды.",
  help: "Что я умею:\n" +
    "• просто напишите сообщение, и я отвечу\n" +
    "• пришлите голосовое (или кружок), и я отвечу на сказанное\n" +
    "• пришлите фото, PDF или текстовый файл, а вопрос напишите в подписи\n" +
    "/reset: начать новый разговор\n" +
    "/history: последние 10 сообщений\n" +
    "/export: разговор файлом .txt (/export md для Markdown)\n" +
    "/cancel: остановить ответ, который пишется (или нажмите ■ на нём)\n" +
    "/usage: ваше использование сегодня и лимиты\n" +
    "/subscribe: проверить подписку на канал\n" +
    "/help: этот список",
  notSubscribed: (channels) =>
    `Этот бот для подписчиков ${channels}. Подпишитесь и нажмите «Проверить снова».`,
  channelButton: (title) => `Открыть ${title}`,
  checkAgain: "Проверить снова",
  stillNotSubscribed: "Подписка пока не найдена. Подпишитесь на канал и попробуйте снова.",
  subscribed: "Подписка есть. Добро пожаловать!",
  gateUnavailable:
    "Сейчас не получается проверить подписку. Попробуйте через несколько минут; владелец уже знает.",
  reset: "Готово: следующее сообщение начнёт новый разговор.",
  historyEmpty: "Сообщений пока нет. Напишите мне что-нибудь!",
  historyTitle: "Последние сообщения:",
  you: "Вы",
  assistant: "Ассистент",
  exportEmpty: "Пока нечего выгружать.",
  exportCaption: "Ваш разговор",
  exportTitle: "Разговор с ассистентом",
  unsupported: "Такие сообщения я не понимаю. Я понимаю текст, голосовые и кружки, аудио, " +
    "фото, PDF и текстовые файлы.",
  media: {
    video: "Видео я смотреть не умею. Пришлите голосовое или кружок, и я его послушаю, " +
      "или опишите видео словами.",
    fileType: (name) =>
      `Не могу прочитать «${name}»: такие файлы не поддерживаются. Я принимаю PDF, ` +
      "текстовые файлы (txt, md, csv, json, код), изображения (JPEG, PNG, GIF, WebP) и аудио.",
    imageType: "Этот формат изображения не поддерживается: пришлите JPEG, PNG, GIF или WebP.",
    tooBig: (size, max) =>
      `Файл слишком большой${size === undefined ? "" : ` (${mb(size)} МБ)`}: я принимаю ` +
      `файлы до ${mb(max)} МБ.`,
    download: "Не получилось скачать ваш файл из Telegram. Пожалуйста, пришлите его ещё раз.",
    transcription: "Не получилось расшифровать голосовое сообщение. Пожалуйста, пришлите его " +
      "ещё раз или напишите словами.",
    emptyTranscript: "Не удалось разобрать ни слова в голосовом сообщении. Пожалуйста, " +
      "пришлите его ещё раз или напишите словами.",
  },
  unsupportedInput: "Модель ассистента в этой настройке не видит изображения и не читает " +
    "файлы. Пожалуйста, опишите это словами.",
  unreadableFile: "Не удалось прочитать текст в этом файле (в отсканированном PDF только " +
    "картинки текста). Пришлите текстовую версию или вставьте нужный фрагмент.",
  groupOnly: (username) =>
    `Я отвечаю только в личных сообщениях: откройте @${username} и напишите мне там.`,
  rateLimited: "Ассистент сейчас перегружен. Пожалуйста, отправьте сообщение ещё раз через минуту.",
  unavailable: "Ассистент временно недоступен. Пожалуйста, отправьте сообщение ещё раз чуть позже.",
  failed: "Что-то пошло не так при ответе. Пожалуйста, отправьте сообщение ещё раз.",
  contextFull: "Разговор стал слишком длинным, ассистент больше не может его прочитать, " +
    "и повторная отправка не поможет. Отправьте /reset, чтобы начать новый разговор " +
    "(а сначала /export, если хотите сохранить этот).",
  emptyAnswer: "Ассистент вернул пустой ответ. Попробуйте переформулировать.",
  incomplete: "(ответ оборвался)",
  stalled:
    "Ассистент перестал отвечать: ответ не пришёл вовремя. Пожалуйста, отправьте сообщение ещё раз.",
  stalledNote:
    "(здесь ассистент перестал отвечать; отправьте сообщение ещё раз, чтобы получить полный ответ)",
  stopped: "⏹ Остановлено.",
  nothingToCancel: "Останавливать нечего: сейчас ответ не пишется.",
  commands: [
    { command: "start", description: "Приветствие и возможности" },
    { command: "reset", description: "Начать новый разговор" },
    { command: "history", description: "Последние сообщения" },
    { command: "export", description: "Выгрузить разговор" },
    { command: "cancel", description: "Остановить текущий ответ" },
    { command: "usage", description: "Ваше использование сегодня" },
    { command: "subscribe", description: "Проверить подписку на канал" },
    { command: "help", description: "Список команд" },
  ],
};

const RUSSIAN_READERS = new Set(["ru", "uk", "be", "kk"]);

/** The language for a Telegram `language_code` (undefined → English). */
export function langOf(languageCode: string | undefined): Lang {
  const base = languageCode?.toLowerCase().split("-")[0];
  return base && RUSSIAN_READERS.has(base) ? "ru" : "en";
}

/** The texts for a Telegram `language_code`. */
export function textsFor(languageCode: string | undefined): Texts {
  return langOf(languageCode) === "ru" ? ru : en;
}

export const allTexts: Record<Lang, Texts> = { en, ru };
