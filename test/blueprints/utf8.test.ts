/**
 * local-host output chunks: whole UTF-8 characters whose byte length is exactly what they consumed.
 */
import { describe, expect, it } from 'vitest';
import { wholeCharacters } from '../../lambdas/blueprints/utf8.ts';

describe('wholeCharacters', () => {
  it('stops before an incomplete character unless the stream ended', () => {
    const bytes = Buffer.from('aé€');
    expect(wholeCharacters(bytes.subarray(0, 2), false)).toEqual({ text: 'a', consumed: 1 });
    expect(wholeCharacters(bytes.subarray(0, 5), false)).toEqual({ text: 'aé', consumed: 3 });
    expect(wholeCharacters(bytes, false)).toEqual({ text: 'aé€', consumed: 6 });
    expect(wholeCharacters(bytes.subarray(0, 5), true)).toEqual({ text: 'aé??', consumed: 5 });
  });

  it('turns each invalid byte into one "?", so byte offsets stay exact', () => {
    const bytes = Buffer.from([0x61, 0xff, 0xc3, 0xa9, 0x80, 0x62]);
    const { text, consumed } = wholeCharacters(bytes, false);
    expect(text).toBe('a?é?b');
    expect(consumed).toBe(6);
    expect(Buffer.byteLength(text)).toBe(consumed);
  });
});
