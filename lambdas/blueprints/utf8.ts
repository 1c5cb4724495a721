/**
 * Cutting command output into whole UTF-8 characters. The engine keeps byte offsets into each
 * stream and asks for what follows, so a chunk must (1) never end inside a character (the rest
 * comes with the next poll) and (2) encode back to exactly the bytes it consumed, or every later
 * offset would be off. Invalid bytes therefore become one `?` each (one byte), not U+FFFD
 * (three bytes).
 */
import { isUtf8 } from 'node:buffer';

/**
 * The most one poll returns of each output stream, in bytes, whatever the plug-in: a poll stays
 * quick and the engine's record of it small however much was written; the rest comes next poll.
 */
export const POLL_MAX_BYTES = 256 * 1024;

/** How many bytes a sequence starting with `lead` has; 0 for a byte that cannot start one. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/**
 * Decode `bytes` up to the last complete character. `final`: nothing will follow (the stream
 * ended), so an incomplete tail is invalid rather than early. `consumed` is the byte length of
 * `text` and how far the caller's offset moves.
 */
export function wholeCharacters(bytes: Buffer, final: boolean): { text: string; consumed: number } {
  let end = bytes.length;
  if (!final) {
    // A character is at most 4 bytes: look for the last lead byte among the last 3.
    for (let i = bytes.length - 1; i >= Math.max(0, bytes.length - 3); i--) {
      const byte = bytes[i] as number;
      if ((byte & 0xc0) === 0x80) continue;
      const length = sequenceLength(byte);
      if (length > 1 && i + length > bytes.length) end = i;
      break;
    }
  }
  const whole = bytes.subarray(0, end);
  if (isUtf8(whole)) return { text: whole.toString('utf8'), consumed: end };
  let text = '';
  let i = 0;
  while (i < end) {
    const length = sequenceLength(whole[i] as number);
    if (length > 0 && i + length <= end && isUtf8(whole.subarray(i, i + length))) {
      text += whole.subarray(i, i + length).toString('utf8');
      i += length;
    } else {
      text += '?';
      i += 1;
    }
  }
  return { text, consumed: end };
}
