import { describe, expect, it, vi, beforeEach } from "vitest";
import type { Api, StatusView } from "./api";
import { setLanguage } from "./i18n";
import { statusView } from "./views/status";
import { unlockView } from "./views/unlock";
import { wizardView } from "./views/wizard";
import { settingsView } from "./views/settings";

vi.mock("./bindings", () => ({ commands: {} }));

const ok = <T>(data: T) => Promise.resolve({ status: "ok" as const, data });
const err = (code: string) => Promise.resolve({ status: "error" as const, error: { code, message: code } });

function status(over: Partial<StatusView["tray"]> = {}): StatusView {
  return {
    tray: { kind: "up_to_date", pending: 0, conflicts: 0, errors: 0, pairs: 1, paused: false, locked: false, ...over },
    device: "laptop",
    in_process: true,
    has_identity: true,
    pairs: [
      { id: "p1", plain: "/home/a/Kluis", mirror: "/home/a/Dropbox/Kluis", state: "idle", alert: null, synced_files: 4, pending: 0, errors: [], skipped: [], not_shared: ["report.pdf"], last_sync_ms: 0 },
    ],
  };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

beforeEach(() => setLanguage("en"));

describe("unlock", () => {
  it("shows the translated failure and keeps focus in the field", async () => {
    const unlockIdentity = vi.fn(() => err("wrong_password"));
    const done = vi.fn();
    const el = unlockView({ unlockIdentity } as unknown as Api, done);
    document.body.replaceChildren(el);
    const input = el.querySelector<HTMLInputElement>("#unlock-password")!;
    expect(el.querySelector(`label[for="unlock-password"]`)?.textContent).toBe("Password");
    input.value = "nope";
    el.dispatchEvent(new Event("submit"));
    await flush();
    expect(unlockIdentity).toHaveBeenCalledWith("nope");
    expect(el.querySelector("#unlock-error")?.textContent).toContain("not right");
    expect(done).not.toHaveBeenCalled();
    expect(document.activeElement).toBe(input);
  });

  it("calls done after a good password", async () => {
    const done = vi.fn();
    const el = unlockView({ unlockIdentity: () => ok(null) } as unknown as Api, done);
    el.querySelector<HTMLInputElement>("#unlock-password")!.value = "secret";
    el.dispatchEvent(new Event("submit"));
    await flush();
    expect(done).toHaveBeenCalledOnce();
  });
});

describe("status", () => {
  it("shows state, counts, skipped files and offers both versions of a conflict", async () => {
    const openConflict = vi.fn(() => ok(null));
    const api = { openConflict, pauseSync: () => ok(null) } as unknown as Api;
    const el = statusView(
      api,
      status({ kind: "attention", conflicts: 1 }),
      [{ pair: "p1", copy: "a (conflict laptop 2026-01-01).txt", original: "a.txt" }],
      [{ pair: "p1", action: "encrypted", path: "a.txt", detail: null, at_ms: 0 }],
      () => {},
    );
    expect(el.querySelector("#state-heading")?.textContent).toBe("Needs attention");
    expect(el.querySelector("#state-counts")?.textContent).toBe("4 files in sync · 0 pending · 1 conflicts");
    expect(el.textContent).toContain("report.pdf: not shared with you");
    expect(el.querySelector("#activity")?.textContent).toContain("Encrypted");
    const open = [...el.querySelectorAll("button")].find((b) => b.textContent === "Open both versions")!;
    open.click();
    await flush();
    expect(openConflict).toHaveBeenCalledWith("p1", "a (conflict laptop 2026-01-01).txt");
  });

  it("offers Resume when paused and hides Lock when locked", () => {
    const el = statusView({} as Api, status({ kind: "paused", paused: true, locked: true }), [], [], () => {});
    expect(el.querySelector("#resume")).not.toBeNull();
    expect(el.querySelector("#pause")).toBeNull();
    expect(el.querySelector("#lock")).toBeNull();
  });

  it("is translated", () => {
    setLanguage("nl");
    const el = statusView({} as Api, status(), [], [], () => {});
    expect(el.querySelector("#state-heading")?.textContent).toBe("Bijgewerkt");
  });
});

describe("wizard", () => {
  it("checks the password, offers found folders, states who can recover, then sets up", async () => {
    const calls: string[] = [];
    const api = {
      createIdentity: vi.fn(() => (calls.push("create"), ok(null))),
      addFolderPair: vi.fn(() => (calls.push("pair"), ok(null))),
      unlockIdentity: vi.fn(() => (calls.push("unlock"), ok(null))),
    } as unknown as Api;
    const done = vi.fn();
    const el = wizardView(api, { found: [{ provider: "Dropbox", path: "/h/Dropbox" }], plain: "/h/Kluis", mirror: "/h/Kluis-encrypted" }, done);
    const q = <T extends Element>(s: string) => el.querySelector<T>(s)!;
    q<HTMLInputElement>("#wizard-password").value = "short";
    el.dispatchEvent(new Event("submit"));
    expect(q("#wizard-error").textContent).toContain("at least 8");
    q<HTMLInputElement>("#wizard-password").value = "long enough";
    q<HTMLInputElement>("#wizard-password2").value = "long enougH";
    el.dispatchEvent(new Event("submit"));
    expect(q("#wizard-error").textContent).toContain("not the same");
    q<HTMLInputElement>("#wizard-password2").value = "long enough";
    el.dispatchEvent(new Event("submit"));
    expect(q("#wizard-step").textContent).toBe("Step 2 of 3");
    [...el.querySelectorAll("button")].find((b) => b.textContent === "Use Dropbox")!.click();
    expect(q<HTMLInputElement>("#wizard-mirror").value).toBe("/h/Dropbox/Kluis");
    el.dispatchEvent(new Event("submit"));
    expect(q("#wizard-recovery").textContent).toContain("Nobody");
    el.dispatchEvent(new Event("submit"));
    await flush();
    await flush();
    expect(calls).toEqual(["create", "pair", "unlock"]);
    expect(api.addFolderPair).toHaveBeenCalledWith("/h/Kluis", "/h/Dropbox/Kluis");
    expect(done).toHaveBeenCalledOnce();
  });
});

describe("settings", () => {
  it("loads a pair's ignore rules when opened and saves them as lines", async () => {
    const getIgnorePatterns = vi.fn(() => ok({ builtin: ["*.swp", "~$*"], user: ["*.log"] }));
    const setIgnorePatterns = vi.fn(() => ok(null));
    const api = { getIgnorePatterns, setIgnorePatterns } as unknown as Api;
    const st = { settings: { language: null, autostart: true }, language: "en", languages: ["en", "nl", "fr"] };
    const el = settingsView(api, st, status(), () => {});
    document.body.replaceChildren(el);
    const details = el.querySelector<HTMLDetailsElement>("details.ignore")!;
    expect(getIgnorePatterns).not.toHaveBeenCalled();
    details.open = true;
    details.dispatchEvent(new Event("toggle"));
    await flush();
    expect(getIgnorePatterns).toHaveBeenCalledWith("p1");
    const text = el.querySelector<HTMLTextAreaElement>("#ignore-p1")!;
    expect(el.querySelector('label[for="ignore-p1"]')?.textContent).toBe("Ignore rules");
    expect(text.value).toBe("*.log");
    expect(details.textContent).toContain("Always ignored: *.swp");
    text.value = "*.log\nbuild";
    details.querySelector("form")!.dispatchEvent(new Event("submit"));
    await flush();
    expect(setIgnorePatterns).toHaveBeenCalledWith("p1", ["*.log", "build"]);
    expect(details.querySelector(".note")?.textContent).toBe("Saved.");
  });

  it("says plainly when a rule is refused", async () => {
    const api = {
      getIgnorePatterns: () => ok({ builtin: [], user: [] }),
      setIgnorePatterns: () => err("bad_pattern"),
    } as unknown as Api;
    const st = { settings: { language: null, autostart: true }, language: "en", languages: ["en"] };
    const el = settingsView(api, st, status(), () => {});
    el.querySelector<HTMLTextAreaElement>("#ignore-p1")!.value = "a/b";
    el.querySelector("details.ignore form")!.dispatchEvent(new Event("submit"));
    await flush();
    expect(el.querySelector("details.ignore .note")?.textContent).toContain("not valid");
  });
});
