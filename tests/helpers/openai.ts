/** A fake OpenAI server and the real SDK client pointed at it, for tests that talk to it directly. */
import { OpenAI } from "openai";
import { FakeOpenAI, type FakeOpenAIOptions } from "../fakes/openai.ts";
import type { Answer } from "../../src/assistant/assistant.ts";

/** Runs `fn` with a fresh fake and a client without retries; always closes the fake. */
export async function withFakeOpenAI(
  options: FakeOpenAIOptions,
  fn: (fake: FakeOpenAI, client: OpenAI) => Promise<void>,
): Promise<void> {
  const fake = await FakeOpenAI.start(options);
  const client = new OpenAI({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 });
  try {
    await fn(fake, client);
  } finally {
    await fake.close();
  }
}

/** Reads a turn of `ask` to its end: the deltas and the answer. */
export async function drain(
  turn: AsyncGenerator<string, Answer>,
): Promise<{ deltas: string[]; answer: Answer }> {
  const deltas: string[] = [];
  let step = await turn.next();
  while (!step.done) {
    deltas.push(step.value);
    step = await turn.next();
  }
  return { deltas, answer: step.value };
}
