/**
 * The ledger: where every event the operator counts is recorded, once, into both of
 * its sinks (Prometheus `/metrics` and the store-backed `/stats`), and where each
 * answer's bookkeeping is settled: usage limits, metrics, statistics and its log line.
 *
 * An answer's entry ({@link AnswerEntry}) collects facts as the turn runs (admitted,
 * refused, the model's answer, a failure, the delivery) and {@link AnswerEntry.settle}
 * turns them into counts exactly once, whatever the outcome, from a `finally`:
 *
 * | outcome       | usage                                   | answers metric   |
 * | ------------- | --------------------------------------- | ---------------- |
 * | refused       | nothing taken, nothing given back       | `refused`        |
 * | failed        | the answer ticket given back            | `failed`         |
 * | completed     | tokens added, ticket kept               | `completed`      |
 * | incomplete    | (cut by the model's limit) as completed | `incomplete`     |
 * | aborted       | (stopped by the user) as completed      | `aborted`        |
 * | undelivered   | tokens added, ticket kept (it was billed)| `undelivered`   |
 *
 * Tokens the model reported are always counted, also when the delivery threw (the
 * user blocked the bot): OpenAI billed them. So are the seconds of audio transcribed
 * and the files taken ({@link AnswerEntry.media}), also when the answer then failed. A
 * ticket is given back only when one was taken: not after a refusal, and not when the
 * limits could not be checked at all.
 */
import type { Logger } from "@logtape/logtape";
import type { Answer } from "./assistant/assistant.ts";
import type { AssistantFailure } from "./assistant/assistant.ts";
import type { MediaFailure } from "./media/errors.ts";
import type { Refusal, Usage } from "./limits.ts";
import type { Metrics } from "./metrics.ts";
import type { Stats } from "./stats.ts";

/** What the delivery step reports about the answer it sent. */
export interface DeliveryReport {
  messages: number;
  format: string;
  /** Preview mode: draft, edit or off. */
  mode: string;
  /** Milliseconds from the first token to its first visible text. */
  firstTextMs?: number;
}

/** The bookkeeping of one user message; see the module comment. */
export interface AnswerEntry {
  /**
   * Asks the usage limits whether the message may go to the assistant; a refusal is
   * recorded and returned. A store failure admits the message (counting must not cost
   * an answer) and is logged. `audioSeconds`: the voice or audio the message carries.
   */
  admit(text: string, audioSeconds?: number): Promise<Refusal | undefined>;
  /** Voice or audio was transcribed (billed), and files were taken; adds up. */
  media(used: { audioSeconds?: number; files?: number }): void;
  /** The request to the model goes out now. */
  asked(): void;
  /** The first text delta arrived. */
  firstToken(): void;
  /** The model's stream ended with this answer. */
  answered(answer: Answer): void;
  /**
   * The model failed (after retries), or the media step did (a download, a
   * transcription) before the model was asked.
   */
  failed(kind: AssistantFailure | MediaFailure, error: unknown, step?: "assistant" | "media"): void;
  /** The final message(s) are out. */
  delivered(report: DeliveryReport): void;
  /** Settles the entry once; later calls do nothing. Never rejects. */
  settle(): Promise<void>;
}

/** The operator's counters: one call per event, whatever sinks it feeds. */
export interface Ledger {
  /** Opens the entry of one user message. */
  begin(userId: number): AnswerEntry;
  /** A Bot API call and how it ended (`ok`, `error`, or `429`). */
  telegramCall(method: string, result: "ok" | "error" | "429"): void;
  /** A subscription check answered by the cache (`hit`) or by Telegram (`miss`). */
  subscriptionCheck(result: "hit" | "miss"): void;
}

export interface LedgerOptions {
  usage: Usage;
  stats: Stats;
  metrics: Metrics;
  log: Logger;
  /** Milliseconds clock for latencies (tests); default `performance.now`. */
  now?: () => number;
}

/** Creates the ledger. */
export function createLedger(options: LedgerOptions): Ledger {
  const { usage, stats, metrics, log } = options;
  const now = options.now ?? (() => performance.now());

  function begin(userId: number): AnswerEntry {
    const started = now();
    let ticket = false;
    let refusal: Refusal | undefined;
    let askedAt: number | undefined;
    let firstTokenAt: number | undefined;
    let answer: Answer | undefined;
    let answeredAt = 0;
    let failure:
      | { kind: AssistantFailure | MediaFailure; error: unknown; step: "assistant" | "media" }
      | undefined;
    let audioSeconds = 0;
    let files = 0;
    let delivery: DeliveryReport | undefined;
    let settled = false;

    async function settle(): Promise<void> {
      if (settled) return;
      settled = true;
      if (refusal) {
        metrics.answers.inc({ outcome: "refused" });
        log.info("Refused {userId}: {limit} limit ({max})", { userId, ...refusal });
        return;
      }
      const tokensIn = answer?.usage?.inputTokens ?? 0;
      const tokensOut = answer?.usage?.outputTokens ?? 0;
      const tokens = tokensIn + tokensOut;
      if (tokens > 0) {
        metrics.tokens.inc({ direction: "in" }, tokensIn);
        metrics.tokens.inc({ direction: "out" }, tokensOut);
      }
      if (askedAt !== undefined && firstTokenAt !== undefined) {
        metrics.timeToFirstToken.observe((firstTokenAt - askedAt) / 1000);
      }
      const counts: Promise<void>[] = [];
      if (tokensIn > 0) counts.push(stats.count("tokens_in", tokensIn));
      if (tokensOut > 0) counts.push(stats.count("tokens_out", tokensOut));
      if (audioSeconds > 0) counts.push(stats.count("audio_seconds", audioSeconds));
      if (files > 0) counts.push(stats.count("files", files));
      // The answer ticket is kept for an answer the model gave (billed), given back otherwise.
      const answered = answer !== undefined;
      if (ticket || tokens > 0 || audioSeconds > 0 || files > 0) {
        counts.push(
          usage.finish(userId, { answered, tokens, audioSeconds, files }).catch((error) =>
            log.warning("Usage of {userId} not recorded: {error}", { userId, error })
          ),
        );
      }
      if (answer && askedAt !== undefined) {
        metrics.openaiLatency.observe((answeredAt - askedAt) / 1000);
      }
      let outcome: string;
      if (failure?.step === "media") {
        // The user's own stop, or a file the user can fix, is not an error of the bot's.
        outcome = failure.kind === "stopped" ? "aborted" : "failed";
        const source = failure.kind === "download"
          ? "telegram"
          : failure.kind === "stopped" || failure.kind === "tooBig" || failure.kind === "fileType"
          ? undefined
          : "openai";
        if (source) {
          metrics.errors.inc({ kind: `media_${failure.kind}` });
          counts.push(stats.count(source === "telegram" ? "errors_telegram" : "errors_openai"));
        }
        log[source ? "error" : "info"](
          "Media for {userId} not turned into input ({kind}): {error}; {audioSeconds} s of " +
            "audio transcribed, {files} file(s)",
          { userId, kind: failure.kind, error: failure.error, audioSeconds, files },
        );
      } else if (failure) {
        outcome = "failed";
        metrics.errors.inc({ kind: `openai_${failure.kind}` });
        counts.push(stats.count("errors_openai"));
        log.error("Answer for {userId} failed ({kind}): {error}", {
          userId,
          kind: failure.kind,
          error: failure.error,
        });
      } else if (answer && delivery) {
        outcome = answer.status;
        counts.push(stats.count("answers"));
        log.info(
          "Answered {userId} ({status}): {chars} chars in {messages} {format} message(s), " +
            "{mode} previews, first text {firstTextMs} ms after the first token, {ms} ms in all, " +
            "tokens in/out {tokensIn}/{tokensOut}, audio {audioSeconds} s, files {files}",
          {
            userId,
            status: answer.status,
            chars: answer.text.length,
            messages: delivery.messages,
            format: delivery.format,
            mode: delivery.mode,
            firstTextMs: delivery.firstTextMs === undefined
              ? "-"
              : Math.round(delivery.firstTextMs),
            ms: Math.round(now() - started),
            tokensIn,
            tokensOut,
            audioSeconds,
            files,
          },
        );
      } else {
        // The answer (or the turn) ended without reaching the user: say so with what was spent.
        outcome = answer ? "undelivered" : "failed";
        log.warning(
          "Answer for {userId} not delivered ({status}); tokens in/out {tokensIn}/{tokensOut}",
          { userId, status: answer?.status ?? "no answer", tokensIn, tokensOut },
        );
      }
      metrics.answers.inc({ outcome });
      await Promise.all(counts);
    }

    return {
      async admit(text, seconds) {
        try {
          refusal = await usage.admit(userId, text, seconds);
          ticket = refusal === undefined;
        } catch (error) {
          log.warning("Usage limits not checked for {userId}: {error}", { userId, error });
        }
        return refusal;
      },
      asked: () => void (askedAt = now()),
      firstToken: () => void (firstTokenAt ??= now()),
      answered(a) {
        answer = a;
        answeredAt = now();
      },
      media(used) {
        audioSeconds += used.audioSeconds ?? 0;
        files += used.files ?? 0;
      },
      failed: (kind, error, step = "assistant") => void (failure = { kind, error, step }),
      delivered: (report) => void (delivery = report),
      settle: () => settle().catch((error) => log.error("Ledger: {error}", { error })),
    };
  }

  return {
    begin,
    telegramCall(method, result) {
      metrics.telegramCalls.inc({ method });
      if (result === "ok") return;
      if (result === "429") metrics.telegram429.inc({ method });
      metrics.errors.inc({ kind: "telegram" });
      void stats.count("errors_telegram");
    },
    subscriptionCheck(result) {
      metrics.subscriptionCache.inc({ result });
      void stats.count(result === "hit" ? "cache_hit" : "cache_miss");
    },
  };
}
