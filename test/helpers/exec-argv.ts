/** A model of how systemd splits an Exec line into argv (extract_first_word with UNQUOTE|CUNESCAPE, then %% and $$). */
export function execArgv(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    let w = '';
    let quote = '';
    for (; i < line.length; i++) {
      const c = line[i]!;
      if (c === '\\') {
        w += line[++i] ?? '';
      } else if (quote) {
        if (c === quote) quote = '';
        else w += c;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === ' ' || c === '\t') break;
      else w += c;
    }
    if (quote) throw new Error(`unbalanced quoting in ${line}`);
    words.push(w.replace(/%%/g, '%').replace(/\$\$/g, '$'));
  }
  return words;
}
