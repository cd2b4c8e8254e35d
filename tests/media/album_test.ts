import assert from "node:assert/strict";
import type { Message } from "grammy/types";
import { Albums } from "../../src/media/album.ts";
import { ManualClock } from "../helpers/clock.ts";

const part = (id: number, group = "g1") =>
  ({
    message_id: id,
    date: 0,
    chat: { id: 5, type: "private", first_name: "A" },
    media_group_id: group,
    photo: [{ file_id: `p${id}`, file_unique_id: `u${id}`, width: 1, height: 1 }],
  }) as unknown as Message;

function albums() {
  const clock = new ManualClock();
  const settled: number[][] = [];
  const a = new Albums({
    settled: (ids) => {
      settled.push(ids);
      return Promise.resolve();
    },
    windowMs: 1500,
    maxWaitMs: 10_000,
    clock,
  });
  return { a, clock, settled };
}

Deno.test("albums: the first part's turn waits for quiet, then takes every part once", async () => {
  const { a, clock, settled } = albums();
  a.note(101, part(1));
  const gathering = a.gather(101, part(1));
  await clock.advance(1000);
  a.note(102, part(2)); // arrives while the first part waits
  await clock.advance(1000);
  a.note(103, part(3));
  await clock.advance(1499);
  let done = false;
  gathering.then(() => done = true);
  await Promise.resolve();
  assert.equal(done, false, "still inside the window after the last part");
  await clock.advance(1);
  const batch = await gathering;
  assert.ok(batch);
  assert.deepEqual(batch.messages.map((m) => m.message_id), [1, 2, 3]);
  await batch.done();
  assert.deepEqual(settled, [[102, 103]], "the other parts get their done marks");
  // Their turns: nothing more to do.
  assert.equal(await a.gather(102, part(2)), undefined);
  assert.equal(await a.gather(103, part(3)), undefined);
});

Deno.test("albums: parts that arrived long before the turn are answered at once", async () => {
  const { a, clock } = albums();
  a.note(101, part(1));
  a.note(102, part(2));
  await clock.advance(5000); // the turn waited behind a long answer
  let done = false;
  const gathering = a.gather(101, part(1)).then((batch) => (done = true, batch));
  await clock.advance(0);
  assert.equal(done, true, "the window was quiet already: no new wait");
  assert.deepEqual((await gathering)!.messages.map((m) => m.message_id), [1, 2]);
});

Deno.test("albums: the wait is bounded even while parts keep coming", async () => {
  const { a, clock } = albums();
  const gathering = a.gather(101, part(1));
  for (let i = 2; i <= 12; i++) {
    await clock.advance(1000);
    a.note(100 + i, part(i));
  }
  const batch = await gathering;
  assert.ok(batch);
  assert.equal(batch.messages.length, 10, "the parts noted before 10 s had passed");
});

Deno.test("albums: a part that comes after the answer is answered on its own turn", async () => {
  const { a, clock } = albums();
  a.note(101, part(1));
  const first = a.gather(101, part(1));
  await clock.advance(1500);
  const batch = (await first)!;
  assert.equal(batch.messages.length, 1);
  a.note(102, part(2)); // late, while the first batch is answered
  await batch.done();
  const late = a.gather(102, part(2));
  await clock.advance(1500);
  assert.deepEqual((await late)!.messages.map((m) => m.message_id), [2]);
});

Deno.test("albums: a failed answer releases the parts for the next part's turn", async () => {
  const { a, clock, settled } = albums();
  a.note(101, part(1));
  a.note(102, part(2));
  const first = a.gather(101, part(1));
  await clock.advance(1500);
  (await first)!.release();
  assert.deepEqual(settled, []);
  const second = a.gather(102, part(2));
  await clock.advance(1500);
  const batch = (await second)!;
  assert.deepEqual(batch.messages.map((m) => m.message_id), [1, 2]);
  await batch.done();
  assert.deepEqual(settled, [[101]], "the failed part is marked done with the album");
});

Deno.test("albums: a re-delivered or recovered part is noted once; albums are kept apart", async () => {
  const { a, clock } = albums();
  a.note(101, part(1));
  a.note(101, part(1));
  a.note(201, part(7, "g2"));
  assert.equal(a.size, 2);
  const first = a.gather(101, part(1));
  await clock.advance(1500);
  assert.deepEqual((await first)!.messages.map((m) => m.message_id), [1]);
});

Deno.test("albums: collect() notes album parts of private chats before the turn order", async () => {
  const { a } = albums();
  let nexts = 0;
  const next = () => {
    nexts++;
    return Promise.resolve();
  };
  const ctx = (update_id: number, message: Message) =>
    ({ update: { update_id }, message, chat: message.chat }) as never;
  await a.collect()(ctx(101, part(1)), next);
  await a.collect()(
    ctx(102, { ...part(2), chat: { id: -1, type: "group", title: "G" } } as Message),
    next,
  );
  assert.equal(nexts, 2);
  assert.equal(a.size, 1, "only the private chat's album");
});
