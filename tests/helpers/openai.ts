/** A fake OpenAI server and the real SDK client pointed at it, for tests that talk to it directly. */
import { OpenAI } from "openai";
import { FakeOpenAI, type FakeOpenAIOptions } from "../fakes/openai.ts";

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
