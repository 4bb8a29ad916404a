// A strict RFC 4180 reader (https://www.rfc-editor.org/rfc/rfc4180#section-2): fields are bare
// (no quote, comma or line break inside) or enclosed in double quotes with inner quotes
// doubled; anything else throws, so a test reading CSV also checks that it is well formed.
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [[]];
  let i = 0;
  const field = (): string => {
    if (text[i] !== '"') {
      const end = text.slice(i).search(/[,\n]|$/);
      const bare = text.slice(i, i + end);
      if (/["\r]/.test(bare)) throw new Error(`unquoted field with a quote or CR at ${i}`);
      i += end;
      return bare;
    }
    let value = "";
    for (i++; ; i++) {
      if (i >= text.length) throw new Error("unterminated quoted field");
      if (text[i] !== '"') value += text[i];
      else if (text[i + 1] === '"') value += text[i++];
      else break;
    }
    i++;
    if (i < text.length && text[i] !== "," && text[i] !== "\n")
      throw new Error(`text after a closing quote at ${i}`);
    return value;
  };
  for (;;) {
    rows[rows.length - 1].push(field());
    if (i >= text.length) return rows;
    if (text[i++] === "\n") rows.push([]);
  }
}
