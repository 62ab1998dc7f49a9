// End-to-end tests of the real app: tauri-driver starts target/debug/kluis-tray
// under WebKitWebDriver (Xvfb), in a fresh KLUIS_HOME, and drives the window:
// the first-run wizard (registering with a broker on loopback from an
// invite), the status window after a file is dropped into the
// plaintext folder, locking and unlocking. Run by src-tauri/tests/e2e.sh.
// With KLUIS_SHOTS=dir it also saves screenshots for the docs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { Session } from "./webdriver.mjs";

const app = process.env.KLUIS_TRAY_BIN;
const driver = process.env.TAURI_DRIVER_URL ?? "http://127.0.0.1:4444";
const lang = process.env.KLUIS_E2E_LANG ?? "en";
const shots = process.env.KLUIS_SHOTS;
const tr = JSON.parse(fs.readFileSync(new URL(`../src/i18n/${lang}.json`, import.meta.url)));
// The app inherits its environment from tauri-driver: e2e.sh sets KLUIS_HOME
// (and HOME, LANG) to a fresh directory for each run.
const home = process.env.KLUIS_HOME;
const plain = path.join(home, "Kluis");
const mirror = path.join(home, "Dropbox", "Kluis");
fs.mkdirSync(path.join(home, "Dropbox"), { recursive: true });
const password = "correct horse battery";
let s;

async function shot(name) {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  fs.writeFileSync(path.join(shots, `${name}-${lang}.png`), Buffer.from(await s.screenshot(), "base64"));
}

before(async () => {
  assert.ok(app, "KLUIS_TRAY_BIN must name the app binary");
  assert.ok(home && !fs.existsSync(path.join(home, "identity.kluiskey")), "KLUIS_HOME must be a fresh directory");
  s = await Session.start(driver, app);
});

after(async () => {
  if (s) await s.end().catch(() => {});
});

const step = (n) => tr["wizard.step"].replace("{n}", String(n)).replace("{total}", "4");

test("the first-run wizard registers with the organisation's broker from an invite and pairs the folders", async () => {
  // e2e.sh runs a kluis-broker on loopback (invite-only) and hands us the
  // invite an administrator made with `kluis-broker admin invite create`.
  const invite = process.env.KLUIS_E2E_INVITE;
  assert.ok(invite, "KLUIS_E2E_INVITE must hold the invite");
  await s.waitFor("#wizard-heading", (t) => t === tr["wizard.heading"]);
  await s.click(await s.find("#wizard-where-org"));
  await s.fill("#wizard-invite", invite);
  await shot("wizard-1-account");
  await s.click(await s.find("#wizard-next"));
  await s.waitFor("#wizard-step", (t) => t === step(2));
  await s.fill("#wizard-email", "e2e@example.org");
  await s.fill("#wizard-name", "Eva Janssens");
  await s.fill("#wizard-password", "short");
  await s.fill("#wizard-password2", "short");
  await s.click(await s.find("#wizard-next"));
  await s.waitFor("#wizard-error", (t) => t === tr["wizard.password.short"]);
  await s.fill("#wizard-password", password);
  await s.fill("#wizard-password2", password);
  await shot("wizard-2-register");
  await s.click(await s.find("#wizard-next"));
  // Registering (OPAQUE with Argon2id) happens here, against the broker.
  await s.waitFor("#wizard-step", (t) => t === step(3), 60000);
  assert.ok(fs.existsSync(path.join(home, "identity.kluiskey")), "the identity is kept on this device");
  assert.equal(JSON.parse(fs.readFileSync(path.join(home, "account.json"), "utf8")).email, "e2e@example.org");
  // The Dropbox folder in $HOME is offered.
  await s.clickText("button.chip", tr["wizard.folders.use"].replace("{provider}", "Dropbox"));
  await s.fill("#wizard-plain", plain);
  await shot("wizard-3-folders");
  const m = await s.exec("return document.querySelector('#wizard-mirror').value");
  assert.equal(m, mirror);
  await s.click(await s.find("#wizard-next"));
  // No recovery policy on this broker: said plainly, with the fingerprint.
  await s.waitFor("#wizard-recovery", (t) => t === tr["wizard.recovery.not_enrolled"]);
  await s.waitFor("#wizard-fingerprint", (t) => t.length > 10);
  await shot("wizard-4-recovery");
  await s.click(await s.find("#wizard-next"));
  await s.waitFor("#state-heading", (t) => t === tr["state.up_to_date"]);
});

test("a file dropped into the plaintext folder shows in the status window", async () => {
  fs.writeFileSync(path.join(plain, "report.txt"), "quarterly numbers\n");
  await s.waitFor("#activity", (t) => t.includes("report.txt") && t.includes(tr["action.encrypted"]));
  await s.waitFor("#state-counts", (t) => t.startsWith(tr["status.counts"].split("{synced}")[0] + "1"));
  await s.waitFor("#state-heading", (t) => t === tr["state.up_to_date"]);
  const files = fs.readdirSync(mirror).filter((f) => !f.startsWith("."));
  assert.ok(files.length >= 1, "ciphertext in the mirror");
  assert.ok(!files.some((f) => f.includes("report")), "file names are encrypted too");
  await shot("status");
});

test("the share dialog finds a colleague, checks the policy and shares the folder; they can read it", async () => {
  const env = process.env;
  // The administrator certifies the key the wizard registered.
  execFileSync(env.KLUIS_E2E_BROKER_BIN, ["--data-dir", env.KLUIS_E2E_BROKER_DIR, "admin", "certify", "--org-key", env.KLUIS_E2E_ORG_KEY_FILE, "--email", "e2e@example.org"], { stdio: "pipe" });
  await s.click(await s.find("#nav-share"));
  await s.waitFor("#share-heading", (t) => t === tr["share.heading"]);
  await s.waitFor("#share-members", (t) => t.includes("e2e@example.org") && t.includes(tr["share.trust.verified"]));
  await s.waitFor("#share-label", (t) => t === tr["share.no_label"]);
  await s.fill("#share-query", "bob");
  await s.click(await s.find("form.search button"));
  await s.waitFor("#share-results", (t) => t.includes("Bob Janssens") && t.includes("bob@example.org"));
  await shot("share-search");
  await s.click(await s.find(`[aria-label="${tr["share.add_who"].replace("{who}", "bob@example.org")}"]`));
  await s.waitFor("#share-changes", (t) => t.includes("Bob Janssens"));
  await s.click(await s.find("#share-review"));
  await s.waitFor("#share-verdicts", (t) => t.includes(tr["share.allowed"]));
  await shot("share-review");
  await s.click(await s.find("#share-confirm"));
  // Counts are worded through the language's plural rules, as the UI does.
  const rules = new Intl.PluralRules(lang);
  const count = (key, n) => (tr[`${key}.${rules.select(n)}`] ?? tr[`${key}.other`]).replace("{n}", String(n));
  const done = tr["share.done"].replace("{updated}", count("share.updated", 1)).replace("{unchanged}", count("share.unchanged", 0));
  await s.waitFor("#share-note", (t) => t === done, 60000);
  await s.waitFor("#share-members", (t) => t.includes("bob@example.org"));
  await shot("share-done");
  // Bob's own device opens the file with his own key.
  const files = fs.readdirSync(mirror).filter((f) => !f.startsWith("."));
  const read = files.map((f) => {
    try {
      return execFileSync(env.KLUIS_E2E_KLUIS_BIN, ["--passphrase-file", env.KLUIS_E2E_BOB_PASS, "decrypt", path.join(mirror, f)], {
        env: { ...env, KLUIS_HOME: env.KLUIS_E2E_BOB_HOME, KLUIS_NO_KEYRING: "1" },
        stdio: "pipe",
      }).toString();
    } catch {
      return "";
    }
  });
  assert.ok(read.includes("quarterly numbers\n"), `bob cannot read the shared file: ${files}`);
  await s.click(await s.find("#nav-status"));
  await s.waitFor("#state-heading", (t) => t === tr["state.up_to_date"]);
});

test("locking shows the unlock prompt; a wrong password is refused clearly", async () => {
  await s.click(await s.find("#lock"));
  await s.waitFor("#unlock-heading", (t) => t === tr["unlock.heading"]);
  await s.fill("#unlock-password", "not the password");
  await s.click(await s.find("#unlock-submit"));
  await s.waitFor("#unlock-error", (t) => t === tr["error.wrong_password"]);
  await shot("unlock-wrong-password");
  await s.fill("#unlock-password", password);
  await s.click(await s.find("#unlock-submit"));
  await s.waitFor("#state-heading", (t) => t === tr["state.up_to_date"]);
});

test("settings switch the language at once", async () => {
  await s.click(await s.find("#nav-settings"));
  await s.waitFor("#settings-heading", (t) => t === tr["settings.heading"]);
  // The first pair's ignore rules: loaded from the agent when opened, and
  // saved through it (a rule for *.log files).
  await s.exec(`document.querySelector('details.ignore').open = true;`);
  await s.waitFor('[id^="ignore-"][id$="-builtin"]', (t) => t.includes("*.swp"));
  await s.exec(
    `const t = document.querySelector('details.ignore textarea'); t.value = '*.log'; t.form.requestSubmit();`,
  );
  await s.waitFor("details.ignore .note", (t) => t === tr["settings.saved"]);
  await s.exec(`document.querySelector('details.ignore .actions').scrollIntoView({ block: 'end' });`);
  await shot("settings");
  await s.exec(`window.scrollTo(0, 0);`);
  const other = lang === "nl" ? "fr" : "nl";
  const otr = JSON.parse(fs.readFileSync(new URL(`../src/i18n/${other}.json`, import.meta.url)));
  await s.exec(
    `const el = document.querySelector('#settings-language'); el.value = arguments[0]; el.dispatchEvent(new Event('change'));`,
    [other],
  );
  await s.waitFor("#settings-heading", (t) => t === otr["settings.heading"]);
  await s.exec(
    `const el = document.querySelector('#settings-language'); el.value = ''; el.dispatchEvent(new Event('change'));`,
  );
  await s.waitFor("#settings-heading", (t) => t === tr["settings.heading"]);
});

test("settings change the account password on the broker, then log out and lock", async () => {
  const fresh = "battery staple horse";
  await s.waitFor("#account-where", (t) => t.startsWith("e2e@example.org"));
  await s.fill("#password-old", "not my password");
  await s.fill("#password-new", fresh);
  await s.fill("#password-new2", fresh);
  await s.exec(`document.querySelector('#password-form').requestSubmit();`);
  await s.waitFor("#account-note", (t) => t === tr["error.wrong_password"], 60000);
  await s.fill("#password-old", password);
  await s.fill("#password-new", fresh);
  await s.fill("#password-new2", fresh);
  await s.exec(`document.querySelector('#password-form').requestSubmit();`);
  await s.waitFor("#account-note", (t) => t === tr["settings.password.changed"], 60000);
  await s.exec(`document.querySelector('#account-note').scrollIntoView({ block: 'end' });`);
  await shot("settings-account");
  await s.click(await s.find("#account-logout"));
  await s.waitFor("#unlock-heading", (t) => t === tr["unlock.heading"], 60000);
  await s.fill("#unlock-password", password);
  await s.click(await s.find("#unlock-submit"));
  await s.waitFor("#unlock-error", (t) => t === tr["error.wrong_password"]);
  await s.fill("#unlock-password", fresh);
  await s.click(await s.find("#unlock-submit"));
  await s.waitFor("#state-heading", (t) => t === tr["state.up_to_date"]);
});
