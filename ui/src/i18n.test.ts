import { describe, expect, it } from "vitest";
import en from "./i18n/en.json";
import nl from "./i18n/nl.json";
import fr from "./i18n/fr.json";
import bindings from "./bindings.ts?raw";
import {
  actionText,
  alertText,
  errorText,
  fileFailureText,
  noticeText,
  pickLanguage,
  plural,
  problemText,
  refusalText,
  setLanguage,
  skipText,
  t,
  verdictText,
} from "./i18n";

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
const TABLES: [string, Record<string, string>][] = [
  ["en", en],
  ["nl", nl],
  ["fr", fr],
];

/** The body of `export type Name = …;` in the generated bindings. */
function typeBody(name: string): string {
  const m = bindings.match(new RegExp(`export type ${name} = ([\\s\\S]*?);\\n`));
  if (!m) throw new Error(`bindings.ts has no type ${name}`);
  return m[1].replace(/\/\*[\s\S]*?\*\//g, "");
}

/** The string literals of a union type (`"a" | "b"`), from the Rust enum. */
function variants(name: string): string[] {
  const body = typeBody(name);
  expect(body, `${name} is a union of names`).not.toMatch(/\bstring\b/);
  return [...body.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
}

/** The `kind` tags of a tagged union (`{ kind: "a"; … } | …`). */
function tags(name: string): string[] {
  return [...typeBody(name).matchAll(/kind: "([^"]+)"/g)].map((m) => m[1]);
}

/** Every key a variant of a backend enum needs, from the bindings. */
function enumKeys(): string[] {
  const keys = [
    ...variants("Action").map((v) => `action.${v}`),
    ...variants("PairState").map((v) => `pair.state.${v}`),
    ...variants("ErrorCode").map((v) => `error.${v}`),
    ...variants("ProblemKind").map((v) => `problem.${v}`),
    ...variants("SkipKind").map((v) => `skip.${v}`),
    ...variants("KeyTrust").map((v) => `share.trust.${v}`),
    ...variants("CandidateKind").map((v) => `share.kind.${v}`),
    ...variants("TrayKind").map((v) => `state.${v}`),
    ...variants("TrayKind").map((v) => `tray.status.${v}`),
    // The share dialog: why a key is refused, the policy's verdict, what a
    // share tells besides its counts, why a file was left as it was.
    ...tags("RefusalReason").map((v) => `share.refusal.${v}`),
    ...tags("VerdictReason").map((v) => `share.verdict.${v}`),
    ...tags("ShareNotice").map((v) => `share.notice.${v}`),
    ...tags("FileProblem").map((v) => `share.problem.${v}`),
  ];
  for (const tag of tags("Alert")) {
    // The counted alerts have a text for one file and for more.
    if (tag === "mass_deletion") keys.push("alert.mass_deletion");
    else if (tag === "no_space" || tag === "damaged") keys.push(`alert.${tag}`, `alert.${tag}.more.one`, `alert.${tag}.more.other`);
    else keys.push(`alert.${tag}`);
  }
  return keys;
}

describe("translations", () => {
  it.each([
    ["nl", nl],
    ["fr", fr],
  ])("%s has every English key with the same placeholders", (_lang, table: Record<string, string>) => {
    for (const [k, v] of Object.entries(en)) {
      expect(table, k).toHaveProperty(k);
      expect(placeholders(table[k]), k).toEqual(placeholders(v));
      expect(table[k].trim().length, k).toBeGreaterThan(0);
    }
    expect(Object.keys(table).sort()).toEqual(Object.keys(en).sort());
  });

  it("has a text in every language for every variant of every backend enum", () => {
    const keys = enumKeys();
    // The bindings were read: each enum has its variants.
    expect(variants("Action")).toContain("encrypted");
    expect(variants("ErrorCode").length).toBeGreaterThan(40);
    expect(tags("Alert")).toContain("mass_deletion");
    expect(tags("RefusalReason")).toContain("key_changed");
    expect(tags("VerdictReason")).toContain("policy");
    expect(tags("ShareNotice")).toContain("departed_dropped");
    expect(tags("FileProblem")).toContain("not_shared_with_you");
    for (const [lang, table] of TABLES) {
      const missing = keys.filter((k) => !(k in table) || table[k].trim() === "");
      expect(missing, `${lang} lacks texts`).toEqual([]);
    }
  });

  it("has a text for every error code the backend can send", () => {
    for (const lang of ["en", "nl", "fr"]) {
      setLanguage(lang);
      for (const code of variants("ErrorCode")) {
        const text = errorText({ code });
        expect(text, `${lang} ${code}`).toBe(t(`error.${code}`));
        expect(text, `${lang} ${code}`).not.toContain("error.");
      }
    }
    setLanguage("en");
  });

  it("follows the OS language and falls back to English", () => {
    expect(pickLanguage("nl-BE")).toBe("nl");
    expect(pickLanguage("fr_BE.UTF-8")).toBe("fr");
    expect(pickLanguage("de-DE")).toBe("en");
    expect(pickLanguage(undefined)).toBe("en");
  });

  it("fills placeholders and translates error codes; an unknown code gets the generic text only", () => {
    setLanguage("fr");
    expect(t("wizard.step", { n: 2, total: 3 })).toBe("Étape 2 sur 3");
    expect(errorText({ code: "wrong_password" })).toContain("incorrect");
    expect(errorText({ code: "disk_on_fire" })).toBe(t("error.generic"));
    setLanguage("en");
    expect(document.documentElement.lang).toBe("en");
  });

  it("counts with each language's plural forms", () => {
    const synced = (lang: string, n: number) => {
      setLanguage(lang);
      return plural("status.synced", n);
    };
    expect(synced("en", 1)).toBe("1 file in sync");
    expect(synced("en", 2)).toBe("2 files in sync");
    expect(synced("en", 0)).toBe("0 files in sync");
    expect(synced("nl", 1)).toBe("1 bestand bijgewerkt");
    expect(synced("nl", 2)).toBe("2 bestanden bijgewerkt");
    // French counts 0 and 1 as singular.
    expect(synced("fr", 0)).toBe("0 fichier synchronisé");
    expect(synced("fr", 1)).toBe("1 fichier synchronisé");
    expect(synced("fr", 2)).toBe("2 fichiers synchronisés");
    setLanguage("fr");
    expect(plural("status.conflict_count", 1)).toBe("1 conflit");
    expect(plural("status.conflict_count", 3)).toBe("3 conflits");
    setLanguage("en");
    expect(plural("status.conflict_count", 1)).toBe("1 conflict");
  });

  it("puts backend values into words, never the backend's English", () => {
    setLanguage("nl");
    const alert = alertText({ kind: "mass_deletion", deletions: 12, total: 20, missing_in_mirror: 12, sample: ["a.txt", "b.txt"] });
    expect(alert).toContain("zijn er 12 weg uit de synchronisatiemap");
    expect(alert).toContain("a.txt, b.txt en nog 10");
    expect(alert).not.toMatch(/deletions held back|kluis resume/);
    expect(alertText({ kind: "no_space", path: "big.iso", more: 1, detail: "not enough space on /x" })).toBe(
      "Niet genoeg vrije schijfruimte voor big.iso en nog 1 bestand. Kluis probeert opnieuw zodra er ruimte vrijkomt.",
    );
    expect(alertText({ kind: "sync_failed", detail: "io error: boom" })).not.toContain("boom");
    expect(actionText("encrypted")).toBe(nl["action.encrypted"]);
    expect(actionText("teleported")).toBe(nl["action.other"]);
    expect(problemText({ path: "a", kind: "NoSpace", detail: "x" })).toBe(nl["problem.NoSpace"]);
    expect(skipText({ path: "a", reason: "symbolic link (not synced)", kind: "symlink" })).toBe(nl["skip.symlink"]);
    expect(skipText({ path: "a", reason: "r" })).toBe(nl["skip.other"]);
    expect(refusalText({ kind: "key_changed", pinned: "AAAA 1111" })).toContain("AAAA 1111");
    expect(refusalText({ kind: "other", error: "broker refused the request" })).toBe(nl["share.refusal.other"]);
    expect(verdictText({ kind: "refused", why: { kind: "not_certified" } })).toBe(nl["share.refusal.not_certified"]);
    expect(verdictText({ kind: "policy", rule: "external_sharing" })).toContain("external_sharing");
    expect(noticeText({ kind: "group_files_not_updated", error: "io error: boom" })).toBe(nl["share.notice.group_files_not_updated"]);
    expect(noticeText({ kind: "key_moved", who: "group:finance", fingerprint: "FFFF", folder: "/m" })).toContain("group:finance");
    expect(fileFailureText({ path: "x.kls", problem: { kind: "io", error: "permission denied" } })).not.toContain("permission");
    setLanguage("en");
  });
});
