import {
  APIConnectionError,
  APIError,
  AuthenticationError,
  PermissionDeniedError,
  RateLimitError,
} from "openai";
import { AssistantError } from "./assistant.ts";

/**
 * Whether an error (or a failed response's error) says the input does not fit the
 * model's context window: OpenAI's code `context_length_exceeded`, or the wording of
 * compatible servers (vLLM "maximum context length", llama.cpp "exceeds the available
 * context size", …).
 */
function isContextLengthError(error: { code?: unknown; message?: unknown }): boolean {
  return error.code === "context_length_exceeded" ||
    /context[ _-]?(length|window|size)|maximum context/i.test(String(error.message ?? ""));
}

/**
 * Whether an error says the model cannot take the images or files it was sent:
 * OpenAI's "Invalid content type. image_url is only supported by certain models." (a
 * model without vision), and the wording of compatible servers (vLLM "is not a
 * multimodal model", llama.cpp "image input is not supported", Ollama "does not
 * support images", …).
 */
export function isUnsupportedInputError(error: { message?: unknown }): boolean {
  return /invalid content type|not a multimodal model|(image|file|pdf|vision) input (is )?not supported|does(n't| not) support (images?|vision|files?|pdfs?)|unsupported content type/i
    .test(String(error.message ?? ""));
}

/**
 * Maps an OpenAI SDK error (already retried by the SDK: connection errors, 408, 409,
 * 429, 5xx) to an {@link AssistantError}. The message names the cause for the
 * operator; the SDK's messages never contain the API key in full (OpenAI masks it).
 * `contextFix` tells the operator what bounds the context on this backend.
 */
export function toAssistantError(
  error: unknown,
  action: string,
  contextFix = "the user can /reset",
): AssistantError {
  if (error instanceof AssistantError) return error;
  if (error instanceof APIError && (error.status ?? 400) < 500 && isContextLengthError(error)) {
    return new AssistantError(
      "contextFull",
      `${action}: the conversation no longer fits the model's context window ` +
        `(${error.status ?? "stream"} ${error.code ?? ""}): ${contextFix}`,
      { cause: error },
    );
  }
  if (error instanceof APIError && (error.status ?? 400) < 500 && isUnsupportedInputError(error)) {
    return new AssistantError(
      "unsupportedInput",
      `${action}: the model refused the images or files it was sent (${error.status}): ` +
        `${error.message}: set OPENAI_MODEL to a model with vision and file input`,
      { cause: error },
    );
  }
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

/**
 * The error of a streamed response that ended `response.failed`: `contextFull` when it
 * says the input passed the context window, `failed` otherwise.
 */
export function failedResponse(
  failure: { code?: unknown; message?: unknown } | null | undefined,
  contextFix: string,
): AssistantError {
  const full = !!failure && isContextLengthError(failure);
  return new AssistantError(
    full ? "contextFull" : "failed",
    `response failed: ${failure?.code ?? "unknown"}: ${failure?.message ?? ""}` +
      (full ? `: ${contextFix}` : ""),
  );
}
