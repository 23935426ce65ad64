/**
 * Unit bodies as written to disk. The systemd adapter ends every file with a
 * newline, so bodies are compared in that form.
 */
export function normalizeBody(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}
