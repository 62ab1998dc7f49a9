import type { Api, SettingsView, StatusView } from "../api";
import { h } from "../dom";
import { errorText, t } from "../i18n";

/** Settings: language, start at login, folder pairs. */
export function settingsView(api: Api, st: SettingsView, s: StatusView, changed: () => void): HTMLElement {
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
  );
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
