// Translations: every string the UI shows comes from src/i18n/<lang>.json
// (the tray menu in the Rust shell reads the same files).
import en from "./i18n/en.json";
import nl from "./i18n/nl.json";
import fr from "./i18n/fr.json";

export type Lang = "en" | "nl" | "fr";
export const LANGS: Lang[] = ["en", "nl", "fr"];
const TABLES: Record<Lang, Record<string, string>> = { en, nl, fr };

let current: Lang = "en";

/** Our language for a BCP 47 tag (`nl-BE` → `nl`), else English. */
export function pickLanguage(tag: string | null | undefined): Lang {
  const code = (tag ?? "").slice(0, 2).toLowerCase();
  return (LANGS as string[]).includes(code) ? (code as Lang) : "en";
}

export function setLanguage(lang: string): void {
  current = pickLanguage(lang);
  document.documentElement.lang = current;
}

export function language(): Lang {
  return current;
}

/** `key` in the current language (English, then the key, as fallback). */
export function t(key: string, args: Record<string, string | number> = {}): string {
  const s = TABLES[current][key] ?? TABLES.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k: string) => (k in args ? String(args[k]) : m));
}

/** Translate a `{code, message}` error: the code's sentence, else a generic one. */
export function errorText(e: { code: string; message: string }): string {
  const key = `error.${e.code}`;
  const known = TABLES[current][key] ?? TABLES.en[key];
  return known ?? `${t("error.generic")} (${e.message})`;
}
