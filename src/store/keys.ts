/**
 * Every key the bot writes to its store, in one place, with how long it lives. The
 * first two stay compatible with the Python bot's Redis so an operator can reuse it;
 * everything newer has its own prefix.
 *
 * | family                         | value                          | lifetime                      |
 * | ------------------------------ | ------------------------------ | ----------------------------- |
 * | `thread_id:{user}`             | conversation (or thread) id    | none                          |
 * | `subscription:{user}`          | `"true"` / `"false"`           | SUBSCRIPTION_(NEGATIVE_)TTL   |
 * | `turn:{user}`                  | the holder's random token      | LEASE_SECONDS, renewed        |
 * | `update:{update_id}`           | `"done"`                       | 24 h                          |
 * | `answer:{user}`                | the running answer's id        | 10 min, deleted at its end    |
 * | `cancel:{answer_id}`           | the stopped draft id, or `""`  | 2 min, deleted when read      |
 * | `usage:{day}:{user}:answers`   | answers taken today            | until the day ends, + 1 h     |
 * | `usage:{day}:{user}:tokens`    | tokens used today              | until the day ends, + 1 h     |
 * | `usage:{day}:{user}:audio_seconds` | voice/audio seconds today | until the day ends, + 1 h |
 * | `usage:{day}:{user}:files`     | files taken today              | until the day ends, + 1 h     |
 * | `usage:{day}:all:tokens`       | tokens used today by everyone  | until the day ends, + 1 h     |
 * | `flood:{minute}:{user}`        | messages this minute           | 2 min                         |
 * | `stats:{day}:{name}`           | a daily /stats counter         | until the day ends, + 1 h     |
 * | `stats:users_total`            | users ever seen                | none                          |
 * | `seen:{day}:{user}`            | `"1"`: counted today           | until the day ends, + 1 h     |
 * | `seen:{user}`                  | `"1"`: counted ever            | 10 years                      |
 * | `inbox` (hash)                 | update id → the update, owner  | until answered (`inbox.ts`)   |
 * | `inbox_owner:{process}`        | `"1"`: the process is alive    | LEASE_SECONDS, renewed  |
 * | `inbox_claim:{update_id}`      | the process that took it over  | LEASE_SECONDS           |
 *
 * Days follow `LIMITS_RESET_HOUR_UTC` (`dayOf` in `limits.ts`).
 */
export const keys = {
  /** The user's conversation (Responses) or thread (Assistants) id. */
  conversation: (userId: number) => `thread_id:${userId}`,
  /** The cached subscription check. */
  subscription: (userId: number) => `subscription:${userId}`,
  /** The per-user turn lock (`turns.ts`). */
  turn: (turn: string) => `turn:${turn}`,
  /** The done mark of a handled update (`turns.ts`). */
  done: (updateId: number) => `update:${updateId}`,
  /** Which answer is running for a user, for stops across instances (`cancel.ts`). */
  answer: (userId: number) => `answer:${userId}`,
  /** A stop request for a running answer (`cancel.ts`). */
  cancel: (answerId: string) => `cancel:${answerId}`,
  /** Daily usage counters (`limits.ts`). */
  usage: (
    day: number,
    userId: number | "all",
    name: "answers" | "tokens" | "audio_seconds" | "files",
  ) => `usage:${day}:${userId}:${name}`,
  /** Messages of a user in one minute (`limits.ts`). */
  flood: (minute: number, userId: number) => `flood:${minute}:${userId}`,
  /** A daily statistics counter (`stats.ts`). */
  stat: (day: number, name: string) => `stats:${day}:${name}`,
  /** The number of users ever seen (`stats.ts`). */
  usersTotal: "stats:users_total",
  /** The hash of accepted updates not yet answered (`inbox.ts`). */
  inbox: "inbox",
  /** A live process's inbox lease (`inbox.ts`). */
  inboxOwner: (processId: string) => `inbox_owner:${processId}`,
  /** Which process took over an orphaned update (`inbox.ts`). */
  inboxClaim: (updateId: number) => `inbox_claim:${updateId}`,
  /** Marks a user as counted for a day, or (without a day) ever (`stats.ts`). */
  seen: (userId: number, day?: number) =>
    day === undefined ? `seen:${userId}` : `seen:${day}:${userId}`,
  /**
   * The history the bot keeps with `OPENAI_API=responses` or `chat` (JSON; see
   * `src/assistant/history.ts`). TTL: `HISTORY_TTL_DAYS` (default 30), set again on
   * every turn; /reset deletes it at once.
   */
  history: (userId: number) => `history:${userId}`,
  /** One part of a history too large for one value; same TTL as `history`. */
  historyPart: (userId: number, generation: string, n: number) =>
    `history:${userId}:${generation}:${n}`,
};

/** Lifetimes of the keys above, in seconds, where they are fixed. */
export const ttl = {
  turn: 30,
  done: 24 * 60 * 60,
  answer: 600,
  cancel: 120,
  flood: 120,
  seenEver: 10 * 365 * 24 * 3600,
};
