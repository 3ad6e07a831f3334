/** PostgreSQL's NAMEDATALEN - 1: identifiers longer than this many bytes are truncated. */
const MAX_IDENTIFIER_BYTES = 63;

/**
 * Cuts a portal name to 63 bytes of UTF-8 on a character boundary, as the server keys portals
 * (at Bind, Close and Execute alike; a SQL `FETCH`'s cursor name comes cut by the parser).
 */
export function truncateIdentifier(name: string): string {
  if (Buffer.byteLength(name) <= MAX_IDENTIFIER_BYTES) return name;
  let out = '';
  let bytes = 0;
  for (const ch of name) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > MAX_IDENTIFIER_BYTES) break;
    out += ch;
    bytes += size;
  }
  return out;
}
