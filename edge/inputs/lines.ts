/**
 * Text chunks → lines, in linear time and bounded memory: each chunk is searched for newlines once, a partial
 * line is kept as a list of pieces (joined once, when its newline comes), and a line past `maxChars` is
 * reported as TOO_LONG while the rest of it is dropped unread.
 */
export const TOO_LONG = Symbol('line too long');

export class LineSplitter {
  private chunk = '';
  private from = 0;
  private pieces: string[] = [];
  private pending = 0;
  /** Dropping the rest of an overlong line until its newline. */
  private skipping = false;

  constructor(private readonly maxChars: number) {}

  /** Takes a chunk and returns its first complete line (or null); call next() for the others. */
  push(chunk: string): string | typeof TOO_LONG | null {
    this.chunk = chunk;
    this.from = 0;
    return this.next();
  }

  /** The next complete line of the current chunk, or null when the chunk holds no more newlines. */
  next(): string | typeof TOO_LONG | null {
    const c = this.chunk;
    if (this.from >= c.length) return this.hold('');
    const nl = c.indexOf('\n', this.from);
    if (nl < 0) return this.hold(c.slice(this.from));
    const part = c.slice(this.from, nl);
    this.from = nl + 1;
    if (this.skipping) {
      this.skipping = false;
      return this.next();
    }
    if (this.pending + part.length > this.maxChars) {
      this.reset();
      return TOO_LONG;
    }
    if (this.pieces.length === 0) return part;
    this.pieces.push(part);
    const line = this.pieces.join('');
    this.reset();
    return line;
  }

  /** The last line when the text does not end with a newline (null when it does). */
  end(): string | typeof TOO_LONG | null {
    if (this.skipping) return null;
    if (this.pieces.length === 0) return null;
    const line = this.pieces.join('');
    this.reset();
    return line;
  }

  /** Keeps the chunk's tail as part of a line still open; reports TOO_LONG once when it passes the cap. */
  private hold(tail: string): typeof TOO_LONG | null {
    this.chunk = '';
    this.from = 0;
    if (this.skipping || tail.length === 0) return null;
    if (this.pending + tail.length > this.maxChars) {
      this.reset();
      this.skipping = true;
      return TOO_LONG;
    }
    this.pieces.push(tail);
    this.pending += tail.length;
    return null;
  }

  private reset(): void {
    this.pieces = [];
    this.pending = 0;
  }
}
