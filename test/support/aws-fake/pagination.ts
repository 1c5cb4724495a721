/**
 * Opaque page tokens for the fake's list operations. Real tokens are opaque too; a plug-in
 * must pass them back unchanged, and a token it invented is refused (InvalidNextToken).
 */
export function pageToken(operation: string, offset: number): string {
  return Buffer.from(JSON.stringify({ fake: operation, offset })).toString('base64');
}

/** The offset a token encodes, or undefined when the token is not one this operation issued. */
export function tokenOffset(operation: string, token: string): number | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as {
      fake?: unknown;
      offset?: unknown;
    };
    return parsed.fake === operation && typeof parsed.offset === 'number'
      ? parsed.offset
      : undefined;
  } catch {
    return undefined;
  }
}

/** One page of `items` from a token's offset, and the token for the rest (absent at the end). */
export function paginate<T>(
  operation: string,
  items: T[],
  pageSize: number,
  nextToken: string | undefined,
  invalidToken: (message: string) => Error,
): { page: T[]; nextToken: string | undefined } {
  let offset = 0;
  if (nextToken !== undefined) {
    const decoded = tokenOffset(operation, nextToken);
    if (decoded === undefined) throw invalidToken('The specified token is not valid.');
    offset = decoded;
  }
  const page = items.slice(offset, offset + pageSize);
  const end = offset + page.length;
  return { page, nextToken: end < items.length ? pageToken(operation, end) : undefined };
}
