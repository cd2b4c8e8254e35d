import {
  APIConnectionError,
  APIError,
  AuthenticationError,
  PermissionDeniedError,
  RateLimitError,
} from "openai";
import { AssistantError } from "./assistant.ts";

/**
 * Maps an OpenAI SDK error (already retried by the SDK: connection errors, 408, 409,
 * 429, 5xx) to an {@link AssistantError}. The message names the cause for the
 * operator; the SDK's messages never contain the API key in full (OpenAI masks it).
 */
export function toAssistantError(error: unknown, action: string): AssistantError {
  if (error instanceof AssistantError) return error;
  if (error instanceof RateLimitError) {
    const quota = error.code === "insufficient_quota";
    return new AssistantError(
      quota ? "unavailable" : "rateLimited",
      quota
        ? `${action}: OpenAI quota exhausted (insufficient_quota): add credit to the OpenAI account`
        : `${action}: OpenAI rate limit (429) persisted after retries`,
      { cause: error },
    );
  }
  if (error instanceof AuthenticationError || error instanceof PermissionDeniedError) {
    return new AssistantError(
      "unavailable",
      `${action}: OpenAI refused the API key (${error.status}): check OPENAI_API_KEY`,
      { cause: error },
    );
  }
  if (error instanceof APIConnectionError) {
    return new AssistantError(
      "unavailable",
      `${action}: cannot reach OpenAI (${error.message}): check OPENAI_BASE_URL and the network`,
      { cause: error },
    );
  }
  if (error instanceof APIError) {
    const kind = error.status !== undefined && error.status >= 500 ? "unavailable" : "failed";
    return new AssistantError(
      kind,
      `${action}: OpenAI answered ${error.status}: ${error.message}`,
      {
        cause: error,
      },
    );
  }
  return new AssistantError("failed", `${action}: ${(error as Error)?.message ?? error}`, {
    cause: error,
  });
}
