/**
 * Pure heuristics: does a value name or a string look like a credential?
 * Used to refuse values before they are rendered into unit text. They err on
 * the side of refusing well-known shapes only; a refusal always says why, and
 * the way out (`fleetx secret`) is never worse than the unit text.
 */

/** Words that name a credential when they are a whole word of a key (DB_PASS, dbPwd, db.passphrase). */
const SECRET_WORDS = new Set(['pass', 'passwd', 'password', 'passphrase', 'pwd', 'secret', 'secrets', 'token', 'apikey', 'credential', 'credentials']);
/** Words that say the value is where a secret is, not the secret itself. */
const POINTER_WORDS = new Set(['file', 'path', 'dir', 'name', 'ref', 'env', 'var', 'id']);

/** The words of a key: snake, kebab, dotted and camelCase split, lowercased. */
export function keyWords(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase());
}

/** DB_PASSWORD_FILE, tokenPath, secretName: where a secret is, not what it is. */
export function namesAPointer(key: string): boolean {
  const words = keyWords(key);
  return words.length > 0 && POINTER_WORDS.has(words[words.length - 1]!);
}

/** DB_PASS, dbPwd, API_KEY, but not DB_PASSWORD_FILE or compass. */
export function looksLikeSecretName(key: string): boolean {
  const words = keyWords(key);
  if (words.length === 0 || namesAPointer(key)) return false;
  if (words.some((w) => SECRET_WORDS.has(w))) return true;
  return words.some((w, i) => (w === 'api' || w === 'private' || w === 'access' || w === 'secret') && words[i + 1] === 'key');
}

const SHAPES: ReadonlyArray<readonly [RegExp, string]> = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key'],
  [/[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i, 'a URL with a password'],
  [/\bAKIA[0-9A-Z]{16}\b/, 'an AWS access key'],
  [/\bgh[pousr]_[A-Za-z0-9]{36,}\b/, 'a GitHub token'],
  [/\bxox[abprs]-[A-Za-z0-9-]{10,}/, 'a Slack token'],
  [/\b[rs]k_live_[A-Za-z0-9]{16,}/, 'a Stripe key'],
  [/\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/, 'a JSON web token'],
];

/** `--db-password=x`, `DB_PASS=x`, `token: x` inside a value (args, command lines). */
const ASSIGNMENT = /(?:^|[\s,;'"])-{0,2}([A-Za-z_][A-Za-z0-9_.-]*)\s*[=:]\s*([^\s,;'"]+)/g;

/** What kind of credential the string seems to hold, or undefined. */
export function secretShapeOf(value: string): string | undefined {
  for (const [re, what] of SHAPES) if (re.test(value)) return what;
  for (const m of value.matchAll(ASSIGNMENT)) {
    const [, key, v] = m;
    // a reference to a variable or a file is not the secret itself
    if (v!.startsWith('$') || v!.startsWith('/') || v!.startsWith('%')) continue;
    if (looksLikeSecretName(key!)) return `a secret assigned to ${key}`;
  }
  return undefined;
}
