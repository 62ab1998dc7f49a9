import { describe, expect, it, vi, beforeEach } from "vitest";
import type { Api, StatusView } from "./api";
import { setLanguage } from "./i18n";
import nl from "./i18n/nl.json";
import fr from "./i18n/fr.json";
import { statusView } from "./views/status";
import { unlockView } from "./views/unlock";
import { wizardView } from "./views/wizard";
import { settingsView } from "./views/settings";
import { shareView } from "./views/share";

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
    expect(el.querySelector("#state-counts")?.textContent).toBe("4 files in sync · 0 pending · 1 conflict");
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
  const suggestion = { found: [{ provider: "Dropbox", path: "/h/Dropbox" }], plain: "/h/Kluis", mirror: "/h/Kluis-encrypted" };

  it("on this computer only: checks the password, offers found folders, states who can recover, then sets up", async () => {
    const calls: string[] = [];
    const api = {
      createIdentity: vi.fn(() => (calls.push("create"), ok(null))),
      addFolderPair: vi.fn(() => (calls.push("pair"), ok(null))),
      unlockIdentity: vi.fn(() => (calls.push("unlock"), ok(null))),
    } as unknown as Api;
    const done = vi.fn();
    const el = wizardView(api, suggestion, done);
    const q = <T extends Element>(s: string) => el.querySelector<T>(s)!;
    expect(q("#wizard-step").textContent).toBe("Step 1 of 4");
    expect(q<HTMLInputElement>("#wizard-where-local").checked).toBe(true);
    expect(q<HTMLElement>("#wizard-org").hidden).toBe(true);
    el.dispatchEvent(new Event("submit"));
    q<HTMLInputElement>("#wizard-password").value = "short";
    el.dispatchEvent(new Event("submit"));
    expect(q("#wizard-error").textContent).toContain("at least 8");
    q<HTMLInputElement>("#wizard-password").value = "long enough";
    q<HTMLInputElement>("#wizard-password2").value = "long enougH";
    el.dispatchEvent(new Event("submit"));
    expect(q("#wizard-error").textContent).toContain("not the same");
    q<HTMLInputElement>("#wizard-password2").value = "long enough";
    el.dispatchEvent(new Event("submit"));
    expect(q("#wizard-step").textContent).toBe("Step 3 of 4");
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

  it("with the organisation: registers at step 2, explains a refusal, shows the fingerprint and whether IT can recover", async () => {
    const calls: string[] = [];
    const registerAccount = vi
      .fn()
      .mockImplementationOnce(() => err("account_exists"))
      .mockImplementation(() => (calls.push("register"), ok({ email: "an@example.org", broker_url: "https://k.example.org/", fingerprint: "kf1-abcd", recovery_enrolled: true })));
    const api = {
      registerAccount,
      createIdentity: vi.fn(() => (calls.push("create"), ok(null))),
      addFolderPair: vi.fn(() => (calls.push("pair"), ok(null))),
      unlockIdentity: vi.fn(() => (calls.push("unlock"), ok(null))),
    } as unknown as Api;
    const done = vi.fn();
    const el = wizardView(api, suggestion, done);
    document.body.replaceChildren(el);
    const q = <T extends Element>(s: string) => el.querySelector<T>(s)!;
    q<HTMLInputElement>("#wizard-where-org").checked = true;
    q("fieldset").dispatchEvent(new Event("change", { bubbles: true }));
    expect(q<HTMLElement>("#wizard-org").hidden).toBe(false);
    expect(el.querySelector('label[for="wizard-invite"]')?.textContent).toContain("Invitation");
    el.dispatchEvent(new Event("submit"));
    expect(q("#wizard-error").textContent).toContain("Paste the invitation");
    q<HTMLInputElement>("#wizard-url").value = "https://k.example.org";
    q<HTMLInputElement>("#wizard-org-key").value = "kluis-org-ed25519:abc";
    el.dispatchEvent(new Event("submit"));
    expect(q("#wizard-step").textContent).toBe("Step 2 of 4");
    q<HTMLInputElement>("#wizard-email").value = "an@example.org";
    q<HTMLInputElement>("#wizard-name").value = "An";
    q<HTMLInputElement>("#wizard-password").value = "long enough";
    q<HTMLInputElement>("#wizard-password2").value = "long enough";
    el.dispatchEvent(new Event("submit"));
    await flush();
    expect(q("#wizard-error").textContent).toContain("already an account");
    expect(q("#wizard-step").textContent).toBe("Step 2 of 4");
    el.dispatchEvent(new Event("submit"));
    await flush();
    expect(registerAccount).toHaveBeenLastCalledWith({ invite: null, url: "https://k.example.org", org_key: "kluis-org-ed25519:abc" }, "an@example.org", "An", "long enough");
    expect(q("#wizard-step").textContent).toBe("Step 3 of 4");
    // The account exists now: no way back to make it again.
    expect(q<HTMLButtonElement>("#wizard-back").hidden).toBe(true);
    el.dispatchEvent(new Event("submit"));
    expect(q("#wizard-recovery").textContent).toContain("Your organisation can recover your key");
    expect(q("#wizard-fingerprint").textContent).toBe("kf1-abcd");
    el.dispatchEvent(new Event("submit"));
    await flush();
    await flush();
    expect(calls).toEqual(["register", "pair", "unlock"]);
    expect(done).toHaveBeenCalledOnce();
  });

  it("logs in on a new device and says when IT cannot recover the key", async () => {
    const loginAccount = vi.fn(() => ok({ email: "an@example.org", broker_url: "u", fingerprint: "kf1-x", recovery_enrolled: false }));
    const api = { loginAccount } as unknown as Api;
    const el = wizardView(api, suggestion, vi.fn());
    const q = <T extends Element>(s: string) => el.querySelector<T>(s)!;
    q<HTMLInputElement>("#wizard-where-org").checked = true;
    q<HTMLInputElement>("#wizard-how-login").checked = true;
    q<HTMLTextAreaElement>("#wizard-invite").value = "kluis-invite:xyz";
    el.dispatchEvent(new Event("submit"));
    expect(el.querySelector("#wizard-name")).toBeNull();
    expect(el.querySelector("#wizard-password2")).toBeNull();
    q<HTMLInputElement>("#wizard-email").value = "an@example.org";
    q<HTMLInputElement>("#wizard-password").value = "pw";
    el.dispatchEvent(new Event("submit"));
    await flush();
    expect(loginAccount).toHaveBeenCalledWith({ invite: "kluis-invite:xyz", url: null, org_key: null }, "an@example.org", "pw");
    el.dispatchEvent(new Event("submit"));
    expect(q("#wizard-recovery").textContent).toContain("cannot recover");
  });
});

describe("settings", () => {
  it("loads a pair's ignore rules when opened and saves them as lines", async () => {
    const getIgnorePatterns = vi.fn(() => ok({ builtin: ["*.swp", "~$*"], user: ["*.log"] }));
    const setIgnorePatterns = vi.fn(() => ok(null));
    const api = { getIgnorePatterns, setIgnorePatterns, getAccount: () => ok(null) } as unknown as Api;
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
      getAccount: () => ok(null),
    } as unknown as Api;
    const st = { settings: { language: null, autostart: true }, language: "en", languages: ["en"] };
    const el = settingsView(api, st, status(), () => {});
    el.querySelector<HTMLTextAreaElement>("#ignore-p1")!.value = "a/b";
    el.querySelector("details.ignore form")!.dispatchEvent(new Event("submit"));
    await flush();
    expect(el.querySelector("details.ignore .note")?.textContent).toContain("not valid");
  });
});

describe("settings: pause", () => {
  it("pauses and resumes every folder, and shows the current state", async () => {
    const pauseSync = vi.fn(() => ok(null));
    const resumeSync = vi.fn(() => ok(null));
    const changed = vi.fn();
    const st = { settings: { language: null, autostart: true }, language: "en", languages: ["en"] };
    const el = settingsView({ pauseSync, resumeSync, getAccount: () => ok(null) } as unknown as Api, st, status({ paused: true, kind: "paused" }), changed);
    const box = el.querySelector<HTMLInputElement>("#settings-pause")!;
    expect(el.querySelector('label[for="settings-pause"]')?.textContent).toBe("Pause syncing (every folder)");
    expect(box.checked).toBe(true);
    box.checked = false;
    box.dispatchEvent(new Event("change"));
    await flush();
    expect(resumeSync).toHaveBeenCalledWith(false);
    box.checked = true;
    box.dispatchEvent(new Event("change"));
    await flush();
    expect(pauseSync).toHaveBeenCalledOnce();
    expect(changed).toHaveBeenCalledTimes(2);
  });
});

describe("settings: account", () => {
  const st = { settings: { language: null, autostart: true }, language: "en", languages: ["en"] };

  it("a key on this computer only has no password change or log out", async () => {
    const el = settingsView({ getAccount: () => ok(null) } as unknown as Api, st, status(), () => {});
    await flush();
    expect(el.querySelector("#account-where")?.textContent).toContain("this computer only");
    expect(el.querySelector<HTMLElement>("#password-form")!.parentElement!.hidden).toBe(true);
  });

  it("says who recovered the key and when", async () => {
    const api = {
      getAccount: () =>
        ok({ email: "an@example.org", broker_url: "u", recovery_enrolled: true, last_recovery: { when: "2026-11-29 04:11:50 UTC", approvers: ["ann", "bram"], by: "ann" } }),
    } as unknown as Api;
    const el = settingsView(api, st, status(), () => {});
    await flush();
    const p = el.querySelector<HTMLElement>("#account-recovered")!;
    expect(p.hidden).toBe(false);
    expect(p.textContent).toBe("IT recovered your key at 2026-11-29 04:11:50 UTC: approved by ann, bram; re-sealed by ann.");
  });

  it("an organisation account changes its password and logs out", async () => {
    const changePassword = vi.fn(() => ok({ sessions_revoked: 2, recovery_enrolled: true }));
    const logoutAccount = vi.fn(() => ok(null));
    const changed = vi.fn();
    const loggedOut = vi.fn();
    const api = {
      getAccount: () => ok({ email: "an@example.org", broker_url: "https://k.example.org/", recovery_enrolled: false, last_recovery: null }),
      changePassword,
      logoutAccount,
    } as unknown as Api;
    const el = settingsView(api, st, status(), changed, loggedOut);
    await flush();
    const q = <T extends Element>(s: string) => el.querySelector<T>(s)!;
    expect(q("#account-where").textContent).toBe("an@example.org on https://k.example.org/");
    expect(q("#account-recovery").textContent).toBe("Your organisation cannot recover your key.");
    expect(q<HTMLElement>("#account-recovered").hidden).toBe(true);
    expect(q<HTMLElement>("#password-form").parentElement!.hidden).toBe(false);
    q<HTMLInputElement>("#password-old").value = "old password";
    q<HTMLInputElement>("#password-new").value = "new password";
    q<HTMLInputElement>("#password-new2").value = "new passworD";
    q("#password-form").dispatchEvent(new Event("submit"));
    expect(q("#account-note").textContent).toContain("not the same");
    expect(changePassword).not.toHaveBeenCalled();
    q<HTMLInputElement>("#password-new2").value = "new password";
    q("#password-form").dispatchEvent(new Event("submit"));
    await flush();
    expect(changePassword).toHaveBeenCalledWith("old password", "new password");
    expect(q("#account-note").textContent).toBe("Password changed. Every other session was ended; other devices must log in again.");
    expect(q<HTMLInputElement>("#password-old").value).toBe("");
    expect(q("#account-recovery").textContent).toBe("Your organisation can recover your key.");
    q<HTMLButtonElement>("#account-logout").click();
    await flush();
    expect(logoutAccount).toHaveBeenCalledOnce();
    expect(q("#account-note").textContent).toContain("Logged out");
    expect(loggedOut).toHaveBeenCalledOnce();
    expect(changed).not.toHaveBeenCalled();
  });
  it("an organisation account can undo its last password change", async () => {
    const undoPasswordChange = vi
      .fn()
      .mockReturnValueOnce(Promise.resolve({ status: "error", error: { code: "previous_password_refused", message: "x" } }))
      .mockReturnValueOnce(ok({ sessions_revoked: 1, recovery_enrolled: true }));
    const api = {
      getAccount: () => ok({ email: "an@example.org", broker_url: "https://k.example.org/", recovery_enrolled: false, last_recovery: null }),
      undoPasswordChange,
    } as unknown as Api;
    const el = settingsView(api, st, status(), () => {}, () => {});
    await flush();
    const q = <T extends Element>(s: string) => el.querySelector<T>(s)!;
    expect(q<HTMLElement>("#undo-form").parentElement!.hidden).toBe(false);
    q<HTMLInputElement>("#undo-current").value = "new password";
    q<HTMLInputElement>("#undo-previous").value = "typo";
    q("#undo-form").dispatchEvent(new Event("submit"));
    await flush();
    expect(undoPasswordChange).toHaveBeenCalledWith("new password", "typo");
    expect(q("#account-note").textContent).toContain("Log in again with your previous password");
    q<HTMLInputElement>("#undo-previous").value = "old password";
    q("#undo-form").dispatchEvent(new Event("submit"));
    await flush();
    expect(undoPasswordChange).toHaveBeenLastCalledWith("new password", "old password");
    expect(q("#account-note").textContent).toBe("Back on your previous password. Every other session was ended; other devices must log in again.");
    expect(q<HTMLInputElement>("#undo-current").value).toBe("");
    expect(q("#account-recovery").textContent).toBe("Your organisation can recover your key.");
  });
});

describe("share", () => {
  const ann = { who: "ann@example.org", name: "ann@example.org", kind: "user", fingerprint: "AAAA 1111", trust: "verified", detail: null };
  const bob = { who: "bob@example.org", name: "Bob Janssens", kind: "user", fingerprint: "BBBB 2222", trust: "first_seen", detail: null };
  const eve = { who: "eve@example.org", name: "eve@example.org", kind: "user", fingerprint: "EEEE 6666", trust: "refused", detail: { kind: "not_certified" } };

  it("shows the label and members, finds colleagues with their trust, checks the policy, then shares with progress", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const getFolderShares = vi
      .fn()
      .mockImplementationOnce(() => ok({ pair: "p1", title: "Kluis", label: "medical", me: "ann@example.org", members: [ann] }))
      .mockImplementation(() => ok({ pair: "p1", title: "Kluis", label: "medical", me: "ann@example.org", members: [ann, { ...bob, trust: "verified" }] }));
    const previewShare = vi.fn(() => ok([{ candidate: bob, allowed: true, reason: null }]));
    let finish: (v: unknown) => void = () => {};
    const applyShare = vi.fn(() => new Promise((r) => (finish = r)));
    const shareProgress = vi.fn(() => Promise.resolve({ done: 40, total: 100, running: true }));
    const api = { getFolderShares, shareSearch: () => ok([bob, eve]), previewShare, applyShare, shareProgress } as unknown as Api;
    const el = shareView(api, status());
    document.body.replaceChildren(el);
    await flush();
    const q = <T extends Element>(s: string) => el.querySelector<T>(s)!;
    expect(q("#share-label").textContent).toBe("Classification: medical");
    expect(q("#share-members").textContent).toContain("AAAA 1111");
    expect(q("#share-members").textContent).toContain("verified");
    expect(q<HTMLButtonElement>("#share-review").disabled).toBe(true);
    q<HTMLInputElement>("#share-query").value = "b";
    q("form.search").dispatchEvent(new Event("submit"));
    await flush();
    const rows = [...q("#share-results").querySelectorAll("li")];
    expect(rows[0].textContent).toContain("Bob Janssens");
    expect(rows[0].textContent).toContain("compare the fingerprint");
    expect(rows[1].textContent).toContain("not certified");
    // A refused key cannot be added.
    expect(rows[1].querySelector("button")!.disabled).toBe(true);
    rows[0].querySelector("button")!.click();
    expect(q("#share-changes").textContent).toContain("Bob Janssens");
    expect(q<HTMLButtonElement>("#share-confirm").disabled).toBe(true);
    q<HTMLButtonElement>("#share-review").click();
    await flush();
    expect(previewShare).toHaveBeenCalledWith("p1", ["bob@example.org"]);
    expect(q("#share-verdicts").textContent).toContain("Allowed by your organisation's policy.");
    q<HTMLButtonElement>("#share-confirm").click();
    await vi.advanceTimersByTimeAsync(300);
    expect(q<HTMLProgressElement>("#share-progress").hidden).toBe(false);
    expect(q("#share-note").textContent).toBe("40 of 100 files updated…");
    finish({ status: "ok", data: { files_updated: 100, files_unchanged: 0, files_failed: [], notices: [] } });
    await flush();
    await flush();
    expect(applyShare).toHaveBeenCalledWith("p1", ["bob@example.org"], [], false);
    expect(q("#share-note").textContent).toBe("Done: 100 files updated, 0 already up to date.");
    expect(q("#share-results").children.length).toBe(0);
    expect(q<HTMLProgressElement>("#share-progress").hidden).toBe(true);
    expect(getFolderShares).toHaveBeenCalledTimes(2);
    vi.useRealTimers();
  });

  it("a refused verdict keeps Share disabled, and removing a member is offered", async () => {
    const api = {
      getFolderShares: () => ok({ pair: "p1", title: "Kluis", label: null, me: "ann@example.org", members: [ann, { ...bob, trust: "left" }] }),
      previewShare: () => ok([{ candidate: { ...bob, who: "x@other.org" }, allowed: false, reason: { kind: "policy", rule: "external" } }]),
      shareSearch: () => ok([{ ...bob, who: "x@other.org", trust: "verified" }]),
    } as unknown as Api;
    const el = shareView(api, status());
    await flush();
    const q = <T extends Element>(s: string) => el.querySelector<T>(s)!;
    expect(q("#share-label").textContent).toBe("No classification label.");
    expect(q("#share-members").textContent).toContain("has left");
    // You are not offered for removal; others are.
    expect(el.querySelector('[aria-label="Remove ann@example.org"]')).toBeNull();
    q<HTMLButtonElement>('[aria-label="Remove bob@example.org"]').click();
    expect(q("#share-changes").textContent).toContain("bob@example.org");
    q<HTMLInputElement>("#share-query").value = "x";
    q("form.search").dispatchEvent(new Event("submit"));
    await flush();
    q<HTMLButtonElement>("#share-results button").click();
    q<HTMLButtonElement>("#share-review").click();
    await flush();
    expect(q("#share-verdicts").textContent).toContain("Not allowed: refused by policy rule `external`");
    expect(q("#share-verdicts").textContent).toContain("bob@example.org will no longer get new files.");
    expect(q<HTMLButtonElement>("#share-confirm").disabled).toBe(true);
  });

  it("words a refused colleague, the policy's verdict and a share's notices in Dutch, without the backend's English", async () => {
    setLanguage("nl");
    const changed = { ...eve, who: "carol@example.org", name: "Carol", detail: { kind: "key_changed", pinned: "CCCC 3333" } };
    const api = {
      getFolderShares: () => ok({ pair: "p1", title: "Kluis", label: null, me: "ann@example.org", members: [ann] }),
      shareSearch: () => ok([eve, changed, bob]),
      previewShare: () => ok([{ candidate: bob, allowed: false, reason: { kind: "refused", why: { kind: "left" } } }]),
    } as unknown as Api;
    const el = shareView(api, status());
    await flush();
    const q = <T extends Element>(s: string) => el.querySelector<T>(s)!;
    q<HTMLInputElement>("#share-query").value = "c";
    q("form.search").dispatchEvent(new Event("submit"));
    await flush();
    const rows = [...q("#share-results").querySelectorAll("li")];
    expect(rows[0].textContent).toContain(nl["share.refusal.not_certified"]);
    expect(rows[1].textContent).toContain("De sleutel is veranderd");
    expect(rows[1].textContent).toContain("CCCC 3333");
    rows[2].querySelector("button")!.click();
    q<HTMLButtonElement>("#share-review").click();
    await flush();
    expect(q("#share-verdicts").textContent).toContain("Niet toegestaan");
    expect(q("#share-verdicts").textContent).toContain(nl["share.refusal.left"]);
    const english = /not certified|refused|changed since|has left|organisation|directory/i;
    expect(q("#share-results").textContent).not.toMatch(english);
    expect(q("#share-verdicts").textContent).not.toMatch(english);
    setLanguage("en");
  });

  it("lists a share's notices and the files left as they were, in words", async () => {
    setLanguage("fr");
    let finish: (v: unknown) => void = () => {};
    const api = {
      getFolderShares: () => ok({ pair: "p1", title: "Kluis", label: null, me: "ann@example.org", members: [ann] }),
      shareSearch: () => ok([bob]),
      previewShare: () => ok([{ candidate: bob, allowed: true, reason: null }]),
      applyShare: () => new Promise((r) => (finish = r)),
      shareProgress: () => Promise.resolve({ done: 0, total: 0, running: true }),
    } as unknown as Api;
    const el = shareView(api, status());
    await flush();
    const q = <T extends Element>(s: string) => el.querySelector<T>(s)!;
    q<HTMLInputElement>("#share-query").value = "b";
    q("form.search").dispatchEvent(new Event("submit"));
    await flush();
    q<HTMLButtonElement>("#share-results button").click();
    q<HTMLButtonElement>("#share-review").click();
    await flush();
    q<HTMLButtonElement>("#share-confirm").click();
    await flush();
    finish({
      status: "ok",
      data: {
        files_updated: 1,
        files_unchanged: 0,
        files_failed: [{ path: "a/b.kls", problem: { kind: "not_shared_with_you" } }],
        notices: [
          { kind: "departed_dropped", who: "dave@example.org", folder: "/m" },
          { kind: "directory_unreachable", error: "cannot reach the broker" },
          { kind: "not_group_member", group: "finance" },
        ],
      },
    });
    await flush();
    await flush();
    const text = q("#share-outcome").textContent;
    expect(text).toContain("dave@example.org a quitté l'organisation");
    expect(text).toContain(fr["share.notice.directory_unreachable"]);
    expect(text).toContain("groupe finance");
    expect(text).toContain("a/b.kls : non partagé avec vous");
    expect(text).not.toMatch(/cannot reach|has left|not shared with you/);
    setLanguage("en");
  });

  it("explains why sharing is unavailable without an organisation account", async () => {
    const el = shareView({ getFolderShares: () => err("no_account") } as unknown as Api, status());
    await flush();
    expect(el.querySelector("#share-error")?.textContent).toContain("needs an account");
  });
});

