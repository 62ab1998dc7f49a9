import { describe, expect, it } from "vitest";
import en from "./i18n/en.json";
import nl from "./i18n/nl.json";
import fr from "./i18n/fr.json";
import { errorText, pickLanguage, setLanguage, t } from "./i18n";

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

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

  it("follows the OS language and falls back to English", () => {
    expect(pickLanguage("nl-BE")).toBe("nl");
    expect(pickLanguage("fr_BE.UTF-8")).toBe("fr");
    expect(pickLanguage("de-DE")).toBe("en");
    expect(pickLanguage(undefined)).toBe("en");
  });

  it("fills placeholders and translates error codes", () => {
    setLanguage("fr");
    expect(t("wizard.step", { n: 2, total: 3 })).toBe("Étape 2 sur 3");
    expect(errorText({ code: "wrong_password", message: "x" })).toContain("incorrect");
    expect(errorText({ code: "disk_on_fire", message: "boom" })).toContain("boom");
    setLanguage("en");
    expect(document.documentElement.lang).toBe("en");
  });
});
