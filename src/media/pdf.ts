/**
 * The text of a PDF, extracted in memory with `unpdf` (Mozilla's pdf.js built to run
 * without a worker, a canvas or the network), for the backends that cannot take a
 * file (`OPENAI_API=chat`). The module is loaded on first use, so a bot that never
 * reads a PDF never loads pdf.js.
 */

/**
 * The text of every page, pages separated by a blank line. Rejects when the bytes are
 * not a readable PDF (damaged, encrypted with a password). A scanned PDF without a text
 * layer resolves with an empty (or whitespace) string.
 */
export async function pdfText(data: Uint8Array): Promise<string> {
  const { extractText, getDocumentProxy } = await import("unpdf");
  // pdf.js may take over the buffer it is given: hand it a copy. Verbosity 0: no
  // warnings of its own on the console, errors only through the rejection.
  const pdf = await getDocumentProxy(data.slice(), { verbosity: 0 });
  try {
    const { text } = await extractText(pdf, { mergePages: false });
    return text.map((page) => page.trim()).filter(Boolean).join("\n\n");
  } finally {
    await pdf.loadingTask.destroy();
  }
}
