import { UsageError } from './usage.js';

/**
 * Splits `--cmd 'words'` into argv as a shell would split words, and no
 * more: whitespace separates, '...' is literal, "..." and a backslash
 * escape; nothing is expanded, nothing is run by a shell.
 */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end === -1) throw new UsageError(`unterminated ' in --cmd ${text}`);
      word += text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && (text[j + 1] === '"' || text[j + 1] === '\\')) j++;
        word += text[j];
      }
      if (j >= text.length) throw new UsageError(`unterminated " in --cmd ${text}`);
      i = j;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
    } else {
      word += c;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) throw new UsageError('--cmd needs a command');
  return words;
}
