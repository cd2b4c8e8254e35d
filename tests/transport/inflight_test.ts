/** Tracking running answers so a shutdown can wait for them. */
import assert from "node:assert/strict";
import { InFlight } from "../../src/transport/inflight.ts";

Deno.test("in-flight: drain waits for tasks, including ones added while draining; times out", async () => {
  const inFlight = new InFlight();
  assert.equal(await inFlight.drain(10), "drained");
  const first = Promise.withResolvers<void>();
  const second = Promise.withResolvers<void>();
  const failing = Promise.withResolvers<void>();
  inFlight.track(first.promise);
  const tracked = inFlight.track(failing.promise);
  failing.reject(new Error("x"));
  await assert.rejects(tracked, /x/, "a rejection still reaches the caller");
  let done = false;
  const drained = inFlight.drain(5_000).then((outcome) => {
    done = true;
    return outcome;
  });
  inFlight.track(second.promise);
  first.resolve();
  await first.promise;
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(done, false, "drained while a task added during the drain still ran");
  assert.equal(inFlight.size, 1);
  second.resolve();
  assert.equal(await drained, "drained");
  const stuck = Promise.withResolvers<void>();
  inFlight.track(stuck.promise);
  assert.equal(await inFlight.drain(10), "timeout");
  stuck.resolve();
  assert.equal(await inFlight.drain(1_000), "drained");
});
