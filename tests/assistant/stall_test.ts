/**
 * Stall detection (src/assistant/stall.ts): a scripted backend and a manual scheduler,
 * so no test waits on the clock; then the real Conversations backend against the fake
 * OpenAI server, to show that a retried question is in the conversation once.
 */
import assert from "node:assert/strict";
import { OpenAI } from "openai";
import {
  type Answer,
  type Assistant,
  AssistantError,
  textInput,
  type UserInput,
} from "../../src/assistant/assistant.ts";
import { withStallDetection } from "../../src/assistant/stall.ts";
import type { Clock } from "../../src/clock.ts";
import { createResponsesAssistant } from "../../src/assistant/responses.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { FakeOpenAI } from "../fakes/openai.ts";

/** A clock whose sleeps end only when the test fires them. */
class ManualScheduler implements Clock {
  #next = 1;
  #now = 0;
  readonly timers = new Map<number, { resolve: () => void; ms: number; due: number }>();

  now(): number {
    return this.#now;
  }

  /** Sleeps started so far. */
  get created(): number {
    return this.#next - 1;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (ms <= 0 || signal?.aborted) return Promise.resolve();
    const id = this.#next++;
    return new Promise((resolve) => {
      this.timers.set(id, { resolve, ms, due: this.#now + ms });
      signal?.addEventListener("abort", () => {
        this.timers.delete(id);
        resolve();
      }, { once: true });
    });
  }

  /** Time passes without any sleep ending (a backend that answers slowly, in time). */
  pass(ms: number): void {
    this.#now += ms;
  }

  /** The delays of the pending sleeps. */
  get pending(): number[] {
    return [...this.timers.values()].map((t) => t.ms);
  }

  /**
   * Waits (a few event-loop turns at most) until exactly one sleep is pending; returns
   * its delay. Call it once the wrapper has caught up (see {@link until}).
   */
  async armed(): Promise<number> {
    await until(() => this.timers.size === 1, "one timer pending");
    return this.pending[0];
  }

  /** Ends the pending sleep: time moves on to when it is due. */
  async fire(): Promise<void> {
    const ms = await this.armed();
    const [[id, timer]] = this.timers;
    this.timers.delete(id);
    this.#now = Math.max(this.#now, timer.due);
    timer.resolve();
    await tick();
    assert.ok(ms > 0);
  }
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Waits a few event-loop turns at most for `condition`. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 50 && !condition(); i++) await tick();
  assert.ok(condition(), what);
}

type Item =
  | { type: "delta"; value: string }
  | { type: "end" }
  | { type: "error"; error: Error };

/** One `ask` of the scripted backend: the test pushes what the "model" sends. */
class Call {
  readonly #items: Item[] = [];
  #wake: (() => void) | undefined;
  closed = false;

  constructor(readonly text: string, readonly signal: AbortSignal, readonly deaf: boolean) {
    if (!deaf) signal.addEventListener("abort", () => this.#wake?.(), { once: true });
  }

  push(...items: Item[]): void {
    this.#items.push(...items);
    this.#wake?.();
  }

  delta(value: string): void {
    this.push({ type: "delta", value });
  }

  /** The next item; `"aborted"` as soon as the signal fires (unless deaf). */
  async next(): Promise<Item | "aborted"> {
    for (;;) {
      if (this.signal.aborted && !this.deaf) return "aborted";
      const item = this.#items.shift();
      if (item) return item;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}

/** A backend whose every `ask` is a {@link Call} the test scripts. */
class ScriptedBackend implements Assistant {
  readonly kind = "responses" as const;
  readonly calls: Call[] = [];
  #waiters: (() => void)[] = [];

  /** Calls ignore their signal (a backend stuck where it does not listen). */
  deaf = false;

  async *ask(
    _userId: number,
    input: UserInput,
    signal?: AbortSignal,
  ): AsyncGenerator<string, Answer> {
    assert.ok(signal, "the wrapper always passes a signal");
    const call = new Call(input.text, signal, this.deaf);
    this.calls.push(call);
    for (const wake of this.#waiters.splice(0)) wake();
    let answer = "";
    try {
      for (;;) {
        const item = await call.next();
        if (item === "aborted") return { text: answer, status: "aborted" };
        if (item.type === "error") throw item.error;
        if (item.type === "end") {
          return { text: answer, status: "completed", usage: { inputTokens: 1, outputTokens: 2 } };
        }
        answer += item.value;
        yield item.value;
      }
    } finally {
      call.closed = true;
    }
  }

  /** Resolves with call number `n` (1-based) once it started. */
  async call(n: number): Promise<Call> {
    while (this.calls.length < n) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.calls[n - 1];
  }

  history() {
    return Promise.resolve([]);
  }

  reset() {
    return Promise.resolve();
  }
}

const FIRST = 30_000;
const IDLE = 60_000;

function setup(retry = true) {
  const backend = new ScriptedBackend();
  const scheduler = new ManualScheduler();
  const assistant = withStallDetection(backend, {
    firstTokenMs: FIRST,
    idleMs: IDLE,
    retry,
    clock: scheduler,
  });
  return { backend, scheduler, assistant };
}

/** Reads a turn to its end in the background: the deltas so far, and the outcome. */
function consume(turn: AsyncGenerator<string, Answer>) {
  const deltas: string[] = [];
  const done = (async () => {
    for (let step = await turn.next();; step = await turn.next()) {
      if (step.done) return step.value;
      deltas.push(step.value);
    }
  })();
  done.catch(() => {});
  return { deltas, done };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

Deno.test("stall: no first text in time → the call is aborted and asked once more, which answers", async () => {
  const { backend, scheduler, assistant } = setup();
  const { deltas, done } = consume(assistant.ask(1, textInput("question")));
  const first = await backend.call(1);
  assert.equal(await scheduler.armed(), FIRST);
  await scheduler.fire();
  const second = await backend.call(2);
  assert.equal(first.signal.aborted, true, "the stalled call was aborted");
  assert.equal(second.text, "question", "a fresh ask of the same text");
  assert.equal(second.signal.aborted, false);
  second.delta("Hello");
  await until(() => deltas.length === 1, "the first text arrived");
  assert.equal(await scheduler.armed(), IDLE, "after the first text, the idle timeout");
  second.delta(" there");
  second.push({ type: "end" });
  const answer = await done;
  assert.deepEqual(deltas, ["Hello", " there"]);
  assert.deepEqual(answer, {
    text: "Hello there",
    status: "completed",
    usage: { inputTokens: 1, outputTokens: 2 },
  });
  assert.deepEqual(scheduler.pending, [], "no timer left");
  await tick();
  assert.equal(first.closed, true, "the stalled call was closed");
});

Deno.test("stall: the retry stalls too → AssistantError 'stalled'", async () => {
  const { backend, scheduler, assistant } = setup();
  const { deltas, done } = consume(assistant.ask(1, textInput("question")));
  await scheduler.fire();
  await backend.call(2);
  await scheduler.fire();
  const error = await rejection(done);
  assert.ok(error instanceof AssistantError, String(error));
  assert.equal(error.kind, "stalled");
  assert.match(error.message, /30 s, twice \(OPENAI_FIRST_TOKEN_TIMEOUT\)/);
  assert.deepEqual(deltas, []);
  assert.equal(backend.calls.length, 2, "one retry only");
  assert.ok(backend.calls.every((c) => c.signal.aborted));
  assert.deepEqual(scheduler.pending, []);
});

Deno.test("stall: without retry (Assistants backend) the first stall is the error", async () => {
  const { backend, scheduler, assistant } = setup(false);
  const { done } = consume(assistant.ask(1, textInput("question")));
  await scheduler.fire();
  const error = await rejection(done);
  assert.ok(error instanceof AssistantError && error.kind === "stalled", String(error));
  assert.doesNotMatch(error.message, /twice/);
  assert.equal(backend.calls.length, 1);
  assert.deepEqual(scheduler.pending, []);
});

Deno.test("stall: mid-answer → aborted, the text shown so far kept as an incomplete answer", async () => {
  const { backend, scheduler, assistant } = setup();
  const { deltas, done } = consume(assistant.ask(1, textInput("question")));
  const call = await backend.call(1);
  call.delta("Part one,");
  await until(() => deltas.length === 1, "the first text arrived");
  assert.equal(await scheduler.armed(), IDLE);
  call.delta(" part two");
  await until(() => deltas.length === 2, "the second text arrived");
  await scheduler.fire();
  const answer = await done;
  assert.deepEqual(deltas, ["Part one,", " part two"]);
  assert.deepEqual(answer, { text: "Part one, part two", status: "incomplete", stalled: true });
  assert.equal(call.signal.aborted, true);
  assert.equal(backend.calls.length, 1, "no retry once something was shown");
  assert.deepEqual(scheduler.pending, []);
});

Deno.test("stall: silence after the last text, before the end, is a stall too", async () => {
  const { backend, scheduler, assistant } = setup();
  const { deltas, done } = consume(assistant.ask(1, textInput("question")));
  const call = await backend.call(1);
  call.delta("All of it.");
  await until(() => deltas.length === 1, "the text arrived");
  await scheduler.fire();
  assert.deepEqual(await done, { text: "All of it.", status: "incomplete", stalled: true });
});

Deno.test("stall: the caller's abort still stops the answer, and is not taken for a stall", async () => {
  const { backend, scheduler, assistant } = setup();
  const caller = new AbortController();
  const { deltas, done } = consume(assistant.ask(1, textInput("question"), caller.signal));
  const call = await backend.call(1);
  call.delta("Some");
  await until(() => deltas.length === 1, "the text arrived");
  await scheduler.armed();
  caller.abort();
  assert.deepEqual(await done, { text: "Some", status: "aborted" });
  assert.equal(call.signal.aborted, true, "the abort reached the backend");
  assert.equal(backend.calls.length, 1);
  assert.deepEqual(scheduler.pending, []);

  // Before the first text, too: no retry.
  const early = new AbortController();
  const second = consume(assistant.ask(1, textInput("again"), early.signal));
  await backend.call(2);
  await scheduler.armed();
  early.abort();
  assert.deepEqual(await second.done, { text: "", status: "aborted" });
  assert.equal(backend.calls.length, 2);
  assert.deepEqual(scheduler.pending, []);

  // Aborted before asking: the backend gets an aborted signal at once.
  const before = new AbortController();
  before.abort();
  const third = consume(assistant.ask(1, textInput("late"), before.signal));
  assert.deepEqual(await third.done, { text: "", status: "aborted" });
  assert.equal(backend.calls[2].signal.aborted, true);
  assert.deepEqual(scheduler.pending, []);
});

Deno.test("stall: time the caller holds a delta is not the model's; no timer is left when it stops reading", async () => {
  const { backend, scheduler, assistant } = setup();
  const turn = assistant.ask(1, textInput("question"));
  const step = turn.next();
  const call = await backend.call(1);
  call.delta("one");
  assert.deepEqual(await step, { done: false, value: "one" });
  // The caller takes longer than the idle timeout with this delta: not a stall.
  await scheduler.fire();
  assert.deepEqual(scheduler.pending, [], "a timer firing while the caller holds does nothing");
  const next = turn.next();
  assert.equal(await scheduler.armed(), IDLE, "the wait for the model starts now");
  call.delta("two");
  assert.deepEqual(await next, { done: false, value: "two" });
  assert.equal(call.signal.aborted, false);
  const result = await turn.return({ text: "", status: "aborted" });
  assert.equal(result.done, true);
  assert.equal(call.signal.aborted, true, "abandoning the turn stops the call");
  assert.deepEqual(scheduler.pending, []);
});

Deno.test("stall: a streamed answer costs a timer or two, not one per delta", async () => {
  const { backend, scheduler, assistant } = setup();
  const { deltas, done } = consume(assistant.ask(1, textInput("question")));
  const call = await backend.call(1);
  for (let i = 0; i < 100; i++) call.delta(`w${i} `);
  call.push({ type: "end" });
  assert.equal((await done).status, "completed");
  assert.equal(deltas.length, 100);
  assert.ok(scheduler.created <= 2, `${scheduler.created} timers for 100 deltas`);
  assert.deepEqual(scheduler.pending, []);
});

Deno.test("stall: each delta moves the deadline; a timer that fires early waits on", async () => {
  const { backend, scheduler, assistant } = setup();
  const { deltas, done } = consume(assistant.ask(1, textInput("question")));
  const call = await backend.call(1);
  call.delta("one");
  await until(() => deltas.length === 1, "the first text arrived");
  assert.equal(await scheduler.armed(), IDLE);
  scheduler.pass(40_000);
  call.delta(" two"); // 40 s in: the deadline is now 100 s, the timer still due at 60 s
  await until(() => deltas.length === 2, "the second text arrived");
  await scheduler.fire();
  assert.equal(await scheduler.armed(), 40_000, "set again for what is left");
  assert.equal(call.signal.aborted, false, "not a stall: text came 20 s ago");
  await scheduler.fire();
  assert.deepEqual(await done, { text: "one two", status: "incomplete", stalled: true });
});

Deno.test("stall: a backend that ignores the abort does not hold the answer", async () => {
  const { backend, scheduler, assistant } = setup();
  backend.deaf = true;
  const { deltas, done } = consume(assistant.ask(1, textInput("question")));
  const call = await backend.call(1);
  call.delta("Half");
  await until(() => deltas.length === 1, "the text arrived");
  await scheduler.fire();
  assert.deepEqual(await done, { text: "Half", status: "incomplete", stalled: true });
  assert.deepEqual(scheduler.pending, []);
  call.push({ type: "end" }); // it finishes later, unobserved
});

Deno.test("stall: a timeout after the caller's abort (a backend slow to stop) is still an abort", async () => {
  const { backend, scheduler, assistant } = setup();
  backend.deaf = true;
  const caller = new AbortController();
  const { done } = consume(assistant.ask(1, textInput("question"), caller.signal));
  await backend.call(1);
  caller.abort();
  await scheduler.fire();
  assert.deepEqual(await done, { text: "", status: "aborted" });
  assert.equal(backend.calls.length, 1, "no retry for an answer the caller stopped");
  assert.deepEqual(scheduler.pending, []);
});

Deno.test("stall: backend errors pass through unchanged, without a retry", async () => {
  const { backend, scheduler, assistant } = setup();
  const { done } = consume(assistant.ask(1, textInput("question")));
  const call = await backend.call(1);
  const failure = new AssistantError("rateLimited", "429 after retries");
  call.push({ type: "error", error: failure });
  assert.equal(await rejection(done), failure);
  assert.equal(backend.calls.length, 1);
  assert.deepEqual(scheduler.pending, []);
});

Deno.test("stall: with both timeouts 0 the assistant is left as it is", () => {
  const backend = new ScriptedBackend();
  assert.equal(
    withStallDetection(backend, { firstTokenMs: 0, idleMs: 0, retry: true }),
    backend,
  );
});

Deno.test("stall (Conversations backend): a retried question is in the conversation once", async () => {
  const fake = await FakeOpenAI.start();
  try {
    const store = new MemoryStore();
    const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 1 });
    const backend = createResponsesAssistant({ client, store, model: "gpt-test" });
    const scheduler = new ManualScheduler();
    const assistant = withStallDetection(backend, {
      firstTokenMs: FIRST,
      idleMs: IDLE,
      retry: true,
      clock: scheduler,
    });
    // The model accepts the first request and sends no text.
    const hold = fake.hold();
    const { deltas, done } = consume(assistant.ask(5, textInput("once only")));
    await hold.waiting;
    await scheduler.fire();
    // The fake notices the dropped stream (a disconnect takes the server a moment).
    for (let i = 0; fake.aborted < 1; i++) {
      assert.ok(i < 500, "the stalled stream was never dropped");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The retry goes through.
    hold.release();
    const answer = await done;
    assert.equal(answer.status, "completed");
    assert.equal(answer.text, "Echo: once only");
    assert.equal(deltas.join(""), "Echo: once only");
    assert.equal(fake.requests.filter((r) => r.path === "/v1/responses").length, 2);
    assert.equal(fake.aborted, 1);
    const conversation = await store.get("thread_id:5");
    const history = await backend.history(5);
    assert.ok(conversation);
    assert.deepEqual(history.map((m) => [m.role, m.text]), [
      ["user", "once only"],
      ["assistant", "Echo: once only"],
    ]);
    assert.deepEqual(scheduler.pending, []);
  } finally {
    await fake.close();
  }
});
