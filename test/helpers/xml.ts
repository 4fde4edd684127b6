/** A small well-formedness check for the SVG we write (no XML parser is installed): balanced tags, quoted
 * attributes, escaped ampersands, one root. Returns the root element name; throws with the offset otherwise. */
export function checkXml(text: string): string {
  const body = text.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  let root = '';
  let at = 0;
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y;
  while (at < body.length) {
    const lt = body.indexOf('<', at);
    const text = body.slice(at, lt < 0 ? body.length : lt);
    if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(text)) throw new Error(`unescaped & in text near offset ${at}`);
    if (stack.length === 0 && text.trim() && root) throw new Error(`text after the root element at ${at}`);
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(body);
    if (!m) throw new Error(`malformed tag at offset ${lt}: ${body.slice(lt, lt + 60)}`);
    const [, close, name, attrs, selfClose] = m;
    if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(attrs)) throw new Error(`unescaped & in attributes at ${lt}`);
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> at ${lt} closes <${open}>`);
    } else {
      if (stack.length === 0) {
        if (root) throw new Error(`second root element <${name}> at ${lt}`);
        root = name;
      }
      if (!selfClose) stack.push(name);
    }
    at = tag.lastIndex;
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('> <')}>`);
  return root;
}
