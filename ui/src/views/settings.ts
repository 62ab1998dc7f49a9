import type { Api, SettingsView, StatusView } from "../api";
import { h } from "../dom";
import { errorText, t } from "../i18n";

/** Settings: language, start at login, pause, folder pairs, and the account. */
export function settingsView(api: Api, st: SettingsView, s: StatusView, changed: () => void, loggedOut: () => void = changed): HTMLElement {
  const note = h("p", { class: "note", role: "status", "aria-live": "polite" });
  const report = (r: { status: string; error?: { code: string; message: string } }) => {
    note.textContent = r.status === "ok" ? t("settings.saved") : errorText(r.error!);
    if (r.status === "ok") changed();
  };
  const lang = h(
    "select",
    { id: "settings-language" },
    h("option", { value: "" }, t("settings.language.os")),
    ...st.languages.map((l) => h("option", { value: l }, l === "en" ? "English" : l === "nl" ? "Nederlands" : "Français")),
  );
  lang.value = st.settings.language ?? "";
  lang.addEventListener("change", async () => report(await api.setLanguage(lang.value === "" ? null : lang.value)));
  const pause = h("input", { id: "settings-pause", type: "checkbox" });
  pause.checked = s.tray.paused;
  pause.addEventListener("change", async () => report(pause.checked ? await api.pauseSync() : await api.resumeSync(false)));
  const auto = h("input", { id: "settings-autostart", type: "checkbox" });
  auto.checked = st.settings.autostart !== false;
  auto.addEventListener("change", async () => report(await api.setAutostart(auto.checked)));
  const plain = h("input", { id: "add-plain", type: "text", required: true });
  const mirror = h("input", { id: "add-mirror", type: "text", required: true });
  const add = h(
    "form",
    { class: "grid" },
    h("label", { for: "add-plain" }, t("wizard.folders.plain")),
    plain,
    h("label", { for: "add-mirror" }, t("wizard.folders.mirror")),
    mirror,
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("settings.add"))),
  );
  add.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    report(await api.addFolderPair(plain.value, mirror.value));
  });
  return h(
    "div",
    { class: "stack" },
    h(
      "section",
      { class: "card", "aria-labelledby": "settings-heading" },
      h("h1", { id: "settings-heading" }, t("settings.heading")),
      h("div", { class: "grid" }, h("label", { for: "settings-language" }, t("settings.language")), lang),
      h("div", { class: "check" }, auto, h("label", { for: "settings-autostart" }, t("settings.autostart"))),
      h("div", { class: "check" }, pause, h("label", { for: "settings-pause" }, t("settings.pause"))),
      note,
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "folders-heading" },
      h("h2", { id: "folders-heading" }, t("settings.folders")),
      h(
        "ul",
        { class: "pairs" },
        ...s.pairs.map((p) =>
          h(
            "li",
            { class: "pair" },
            h("code", {}, p.plain),
            " → ",
            h("code", {}, p.mirror),
            " ",
            h("button", { class: "link", onclick: async () => report(await api.removeFolderPair(p.id)) }, t("settings.remove")),
            ignoreRules(api, p.id),
          ),
        ),
      ),
      add,
    ),
    accountCard(api, loggedOut),
  );
}

/** The account: where it lives and whether IT can recover the key; for an
 * organisation account, change the password and log out. */
function accountCard(api: Api, loggedOut: () => void): HTMLElement {
  const where = h("p", { id: "account-where" });
  const recovery = h("p", { id: "account-recovery", class: "muted" });
  const recovered = h("p", { id: "account-recovered", class: "callout", hidden: true });
  const note = h("p", { id: "account-note", class: "note", role: "status", "aria-live": "polite" });
  const old = h("input", { id: "password-old", type: "password", autocomplete: "current-password" });
  const pw = h("input", { id: "password-new", type: "password", autocomplete: "new-password", minlength: "8" });
  const pw2 = h("input", { id: "password-new2", type: "password", autocomplete: "new-password" });
  const change = h(
    "form",
    { class: "grid", id: "password-form", "aria-labelledby": "password-heading" },
    h("h3", { id: "password-heading", class: "span" }, t("settings.password.heading")),
    h("label", { for: "password-old" }, t("settings.password.old")),
    old,
    h("label", { for: "password-new" }, t("wizard.password.new")),
    pw,
    h("label", { for: "password-new2" }, t("wizard.password.repeat")),
    pw2,
    h("div", { class: "actions" }, h("button", { type: "submit", id: "password-change" }, t("settings.password.change"))),
  );
  change.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (pw.value.length < 8) return void (note.textContent = t("wizard.password.short"));
    if (pw.value !== pw2.value) return void (note.textContent = t("wizard.password.mismatch"));
    const r = await api.changePassword(old.value, pw.value);
    if (r.status === "error") return void (note.textContent = errorText(r.error));
    old.value = pw.value = pw2.value = "";
    note.textContent = t("settings.password.changed");
    recovery.textContent = t(r.data.recovery_enrolled ? "settings.account.recovery_yes" : "settings.account.recovery_no");
  });
  const undoCurrent = h("input", { id: "undo-current", type: "password", autocomplete: "current-password" });
  const undoPrevious = h("input", { id: "undo-previous", type: "password", autocomplete: "off" });
  const undo = h(
    "form",
    { class: "grid", id: "undo-form", "aria-labelledby": "undo-heading" },
    h("h3", { id: "undo-heading", class: "span" }, t("settings.undo.heading")),
    h("p", { class: "span muted" }, t("settings.undo.hint")),
    h("label", { for: "undo-current" }, t("settings.password.old")),
    undoCurrent,
    h("label", { for: "undo-previous" }, t("settings.undo.previous")),
    undoPrevious,
    h("div", { class: "actions" }, h("button", { type: "submit", id: "undo-change" }, t("settings.undo.button"))),
  );
  undo.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api.undoPasswordChange(undoCurrent.value, undoPrevious.value);
    if (r.status === "error") return void (note.textContent = errorText(r.error));
    undoCurrent.value = undoPrevious.value = "";
    note.textContent = t("settings.undo.done");
    recovery.textContent = t(r.data.recovery_enrolled ? "settings.account.recovery_yes" : "settings.account.recovery_no");
  });
  const logout = h("button", { type: "button", id: "account-logout" }, t("settings.logout"));
  logout.addEventListener("click", async () => {
    const r = await api.logoutAccount();
    note.textContent = r.status === "ok" ? t("settings.logout.done") : errorText(r.error);
    if (r.status === "ok") loggedOut();
  });
  const orgOnly = h("div", { class: "stack", hidden: true }, change, undo, h("div", { class: "actions" }, logout));
  const card = h(
    "section",
    { class: "card", "aria-labelledby": "account-heading" },
    h("h2", { id: "account-heading" }, t("settings.account")),
    where,
    recovery,
    recovered,
    orgOnly,
    note,
  );
  void api.getAccount().then((r) => {
    if (r.status === "error") return void (note.textContent = errorText(r.error));
    const a = r.data;
    if (!a) return void (where.textContent = t("settings.account.local"));
    where.textContent = t("settings.account.org", { email: a.email, broker: a.broker_url });
    if (a.recovery_enrolled !== null) {
      recovery.textContent = t(a.recovery_enrolled ? "settings.account.recovery_yes" : "settings.account.recovery_no");
    }
    if (a.last_recovery) {
      recovered.textContent = t("settings.account.recovered", { when: a.last_recovery.when, approvers: a.last_recovery.approvers.join(", "), by: a.last_recovery.by });
      recovered.hidden = false;
    }
    orgOnly.hidden = false;
  });
  return card;
}

/** A pair's own ignore rules: loaded when opened, saved as one list. The
 * outcome shows next to the form (saving changes nothing else on screen). */
function ignoreRules(api: Api, pair: string): HTMLElement {
  const id = `ignore-${pair}`;
  const text = h("textarea", { id, rows: "4", spellcheck: "false", autocapitalize: "off", "aria-describedby": `${id}-help` });
  const builtin = h("p", { id: `${id}-builtin`, class: "muted small" });
  const note = h("p", { class: "note", role: "status", "aria-live": "polite" });
  const say = (r: { status: string; error?: { code: string; message: string } }) => {
    note.textContent = r.status === "ok" ? t("settings.saved") : errorText(r.error!);
  };
  const form = h(
    "form",
    { class: "stack" },
    // The summary above already shows the name; the label is for screen readers.
    h("label", { for: id, class: "sr-only" }, t("settings.ignore")),
    h("p", { id: `${id}-help`, class: "muted small" }, t("settings.ignore.help")),
    text,
    builtin,
    h("div", { class: "actions" }, note, h("button", { type: "submit" }, t("settings.ignore.save"))),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say(await api.setIgnorePatterns(pair, text.value.split("\n")));
  });
  const details = h("details", { class: "ignore" }, h("summary", {}, t("settings.ignore")), form);
  let loaded = false;
  details.addEventListener("toggle", async () => {
    if (!details.open || loaded) return;
    const r = await api.getIgnorePatterns(pair);
    if (r.status === "ok") {
      loaded = true;
      text.value = r.data.user.join("\n");
      builtin.textContent = t("settings.ignore.builtin", { list: r.data.builtin.join("  ") });
    } else {
      say(r);
    }
  });
  return details;
}
