/** The history the bot keeps for `responses` and `chat`: bounds, expiry, parts, reset. */
import assert from "node:assert/strict";
import { MemoryStore } from "../../src/store/memory.ts";
import { KvStore } from "../../src/store/kv.ts";
import {
  createHistory,
  estimateTokens,
  PART_CHARS,
  type StoredMessage,
  toHistory,
  trimHistory,
} from "../../src/assistant/history.ts";

const msg = (role: "user" | "assistant", text: string): StoredMessage => ({ role, text, at: 0 });

Deno.test("history: tokens are UTF-8 bytes / 4, rounded up", () => {
  assert.equal(estimateTokens(""), 0);
  assert.equal(estimateTokens("abcd"), 1);
  assert.equal(estimateTokens("abcde"), 2);
  assert.equal(estimateTokens("привет"), 3, "Cyrillic letters are two bytes");
});

Deno.test("history: the oldest turns go first, whole turns, until the rest fits", () => {
  const turns = [
    msg("user", "a".repeat(40)), // 10 tokens
    msg("assistant", "b".repeat(40)),
    msg("user", "c".repeat(40)),
    msg("assistant", "d".repeat(40)),
    msg("user", "e".repeat(40)),
    msg("assistant", "f".repeat(40)),
  ];
  assert.deepEqual(trimHistory(turns, 60), turns);
  assert.deepEqual(trimHistory(turns, 59).map((m) => m.text[0]), ["c", "d", "e", "f"]);
  assert.deepEqual(trimHistory(turns, 20).map((m) => m.text[0]), ["e", "f"]);
  assert.deepEqual(trimHistory(turns, 19), [], "a turn larger than the bound is not kept");
});

Deno.test("history: append, load, the last n as HistoryMessages, clear", async () => {
  const store = new MemoryStore();
  let now = 1_000;
  const history = createHistory({ store, maxTokens: 1000, ttlSeconds: 60, now: () => now });
  assert.deepEqual(await history.load(1), []);
  await history.append(1, "hi", "hello");
  now = 2_000;
  await history.append(1, "how are you", "fine");
  const all = await history.load(1);
  assert.deepEqual(all.map((m) => [m.role, m.text, m.at]), [
    ["user", "hi", 1000],
    ["assistant", "hello", 1000],
    ["user", "how are you", 2000],
    ["assistant", "fine", 2000],
  ]);
  assert.deepEqual(toHistory(all, 2).map((m) => [m.text, m.at?.getTime()]), [
    ["how are you", 2000],
    ["fine", 2000],
  ]);
  assert.equal(await history.load(2).then((m) => m.length), 0, "per user");
  await history.clear(1);
  assert.deepEqual(await history.load(1), []);
  assert.equal(await store.get("history:1"), null);
});

Deno.test("history: expires ttl seconds after the last turn", async () => {
  let clock = 0;
  const store = new MemoryStore({ now: () => clock });
  const history = createHistory({ store, maxTokens: 1000, ttlSeconds: 60 });
  await history.append(5, "a", "b");
  clock = 59_000;
  await history.append(5, "c", "d");
  clock = 110_000;
  assert.equal((await history.load(5)).length, 4, "the second turn set the TTL again");
  clock = 119_001;
  assert.deepEqual(await history.load(5), []);
});

Deno.test("history: a large history is split into parts that fit Deno KV, and cleaned up", async () => {
  const store = await KvStore.open(":memory:");
  try {
    // Cyrillic: 2 bytes per UTF-16 unit in KV; 60,000 letters would not fit one value.
    const long = "я".repeat(30_000);
    const history = createHistory({ store, maxTokens: 100_000, ttlSeconds: 600 });
    await history.append(7, long, long);
    const head = JSON.parse((await store.get("history:7"))!);
    assert.equal(head.parts, Math.ceil((60_000 + 100) / PART_CHARS));
    const loaded = await history.load(7);
    assert.deepEqual(loaded.map((m) => m.text.length), [30_000, 30_000]);
    // A second write replaces the parts and deletes the old generation.
    await history.append(7, "short", "answer");
    const next = JSON.parse((await store.get("history:7"))!);
    assert.notEqual(next.gen, head.gen);
    for (let n = 0; n < head.parts; n++) {
      assert.equal(await store.get(`history:7:${head.gen}:${n}`), null);
    }
    assert.equal((await history.load(7)).length, 4);
    await history.clear(7);
    for (let n = 0; n < next.parts; n++) {
      assert.equal(await store.get(`history:7:${next.gen}:${n}`), null);
    }
    assert.equal(await store.get("history:7"), null);
  } finally {
    await store.close();
  }
});

/** A store that keeps values as UTF-8, as Redis does: half an emoji would not survive. */
class Utf8Store extends MemoryStore {
  override set(key: string, value: string, ttlSeconds?: number) {
    return super.set(key, new TextDecoder().decode(new TextEncoder().encode(value)), ttlSeconds);
  }
}

Deno.test("history: emoji are never split across parts", async () => {
  const store = new Utf8Store();
  const history = createHistory({ store, maxTokens: 1e6, ttlSeconds: 600 });
  const text = "a" + "😀".repeat(PART_CHARS);
  await history.append(8, text, "ok");
  assert.equal((await history.load(8))[0].text, text);
});

Deno.test("history: damaged or foreign values read as an empty history", async () => {
  const store = new MemoryStore();
  const history = createHistory({ store, maxTokens: 1000, ttlSeconds: 600 });
  await store.set("history:9", "{not json");
  assert.deepEqual(await history.load(9), []);
  await store.set("history:9", JSON.stringify({ gen: "abc", parts: 2 }));
  assert.deepEqual(await history.load(9), [], "a missing part");
  await history.append(9, "a", "b");
  assert.equal((await history.load(9)).length, 2);
});
