// Translations: every string the UI shows comes from src/i18n/<lang>.json
// (the tray menu in the Rust shell reads the same files). What the backend
// reports is typed (bindings.ts: Action, Alert, ErrorCode, …); the words
// for each value are here, so no backend English reaches the screen.
import en from "./i18n/en.json";
import nl from "./i18n/nl.json";
import fr from "./i18n/fr.json";
import type { Alert, FileFailure, ItemProblem, RefusalReason, ShareNotice, Skip, VerdictReason } from "./bindings";

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

function lookup(key: string): string | undefined {
  return TABLES[current][key] ?? TABLES.en[key];
}

/** `key` in the current language (English, then the key, as fallback). */
export function t(key: string, args: Record<string, string | number> = {}): string {
  const s = lookup(key) ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k: string) => (k in args ? String(args[k]) : m));
}

/**
 * A count in words: `key.one`, `key.other` (… as the language's plural rules
 * pick, falling back to `key.other`), with `{n}` set to the count.
 */
export function plural(key: string, n: number, args: Record<string, string | number> = {}): string {
  const category = new Intl.PluralRules(current).select(n);
  const k = lookup(`${key}.${category}`) !== undefined ? `${key}.${category}` : `${key}.other`;
  return t(k, { ...args, n });
}

/** Translate an error's code; an unknown code gets the generic sentence. */
export function errorText(e: { code: string }): string {
  return lookup(`error.${e.code}`) ?? t("error.generic");
}

/** What happened to a file (an activity line's action). */
export function actionText(action: string): string {
  return lookup(`action.${action}`) ?? t("action.other");
}

/** Why a file failed in the last pass. */
export function problemText(p: ItemProblem): string {
  return lookup(`problem.${p.kind}`) ?? t("problem.Failed");
}

/** Why a path is skipped. */
export function skipText(s: Skip): string {
  return lookup(`skip.${s.kind ?? "other"}`) ?? t("skip.other");
}

/** A list of examples, with "and N more" when there are more. */
function examples(sample: string[], total: number): string {
  const list = sample.join(", ");
  const more = total - sample.length;
  return more > 0 ? plural("alert.and_more", more, { list }) : list;
}

/** Why a pair needs attention, in words. */
export function alertText(a: Alert): string {
  switch (a.kind) {
    case "mass_deletion": {
      const parts: string[] = [];
      if (a.missing_in_mirror > 0) parts.push(plural("alert.gone_from_mirror", a.missing_in_mirror));
      const fromPlain = a.deletions - a.missing_in_mirror;
      if (fromPlain > 0) parts.push(plural("alert.gone_from_plain", fromPlain));
      return t("alert.mass_deletion", {
        total: a.total,
        what: parts.join(t("alert.list_and")),
        examples: examples(a.sample, a.deletions),
      });
    }
    case "no_space":
    case "damaged":
      return a.more > 0 ? plural(`alert.${a.kind}.more`, a.more, { path: a.path }) : t(`alert.${a.kind}`, { path: a.path });
    default:
      return lookup(`alert.${a.kind}`) ?? t("error.generic");
  }
}

/** Why a colleague's or group's key is refused, in words. */
export function refusalText(r: RefusalReason): string {
  return r.kind === "key_changed" ? t("share.refusal.key_changed", { pinned: r.pinned }) : (lookup(`share.refusal.${r.kind}`) ?? t("share.refusal.other"));
}

/** Why the policy (or the key's trust) forbids adding someone, in words. */
export function verdictText(v: VerdictReason): string {
  switch (v.kind) {
    case "policy":
      return t("share.verdict.policy", { rule: v.rule });
    case "refused":
      return refusalText(v.why);
    default:
      return lookup(`share.verdict.${v.kind}`) ?? t("share.verdict.refused");
  }
}

/** Something a share tells the person, in words (the backend's English
 * cause is for logs only). */
export function noticeText(n: ShareNotice): string {
  switch (n.kind) {
    case "departed_dropped":
      return t("share.notice.departed_dropped", { who: n.who });
    case "key_moved":
      return t("share.notice.key_moved", { who: n.who, fingerprint: n.fingerprint });
    case "group_file_not_written":
    case "not_group_member":
      return t(`share.notice.${n.kind}`, { group: n.group });
    default:
      return lookup(`share.notice.${n.kind}`) ?? t("error.generic");
  }
}

/** A file a share left as it was, and why, in words. */
export function fileFailureText(f: FileFailure): string {
  const key = lookup(`share.problem.${f.problem.kind}`) !== undefined ? `share.problem.${f.problem.kind}` : "share.problem.io";
  return t(key, { path: f.path });
}
