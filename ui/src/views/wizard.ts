import type { Api, FolderSuggestion } from "../api";
import { h } from "../dom";
import { errorText, t } from "../i18n";

/** First run: a password for the new identity, the folders, and plainly who can recover the key. */
export function wizardView(api: Api, suggestion: FolderSuggestion, done: () => void): HTMLElement {
  const total = 3;
  let step = 1;
  const pw = h("input", { id: "wizard-password", type: "password", autocomplete: "new-password", required: true, minlength: "8" });
  const pw2 = h("input", { id: "wizard-password2", type: "password", autocomplete: "new-password", required: true });
  const plain = h("input", { id: "wizard-plain", type: "text", required: true });
  const mirror = h("input", { id: "wizard-mirror", type: "text", required: true });
  plain.value = suggestion.plain;
  mirror.value = suggestion.mirror;
  const error = h("p", { id: "wizard-error", class: "error", role: "alert" });
  const body = h("div", { class: "wizard-body" });
  const stepLine = h("p", { class: "muted", id: "wizard-step" });
  const back = h("button", { type: "button", id: "wizard-back" }, t("wizard.back"));
  const next = h("button", { type: "submit", id: "wizard-next" }, t("wizard.next"));
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "wizard-heading", novalidate: true },
    h("h1", { id: "wizard-heading" }, t("wizard.heading")),
    stepLine,
    body,
    error,
    h("div", { class: "actions" }, back, next),
  );
  const render = () => {
    stepLine.textContent = t("wizard.step", { n: step, total });
    back.hidden = step === 1;
    next.textContent = step === total ? t("wizard.finish") : t("wizard.next");
    error.textContent = "";
    if (step === 1) {
      body.replaceChildren(
        h("h2", {}, t("wizard.password.heading")),
        h("p", {}, t("wizard.password.explain")),
        h("label", { for: "wizard-password" }, t("wizard.password.new")),
        pw,
        h("label", { for: "wizard-password2" }, t("wizard.password.repeat")),
        pw2,
      );
      pw.focus();
    } else if (step === 2) {
      const found = suggestion.found.length
        ? h(
            "div",
            { class: "found" },
            h("p", {}, t("wizard.folders.found")),
            ...suggestion.found.map((c) =>
              h("button", { type: "button", class: "chip", onclick: () => (mirror.value = `${c.path}/Kluis`) }, t("wizard.folders.use", { provider: c.provider })),
            ),
          )
        : h("p", { class: "muted" }, t("wizard.folders.none_found"));
      body.replaceChildren(
        h("h2", {}, t("wizard.folders.heading")),
        h("p", {}, t("wizard.folders.explain")),
        h("label", { for: "wizard-plain" }, t("wizard.folders.plain")),
        plain,
        h("label", { for: "wizard-mirror" }, t("wizard.folders.mirror")),
        mirror,
        found,
      );
      plain.focus();
    } else {
      body.replaceChildren(
        h("h2", {}, t("wizard.recovery.heading")),
        h("p", { id: "wizard-recovery", class: "callout" }, t("wizard.recovery.none")),
      );
      next.focus();
    }
  };
  back.addEventListener("click", () => {
    step = Math.max(1, step - 1);
    render();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (step === 1) {
      if (pw.value.length < 8) return void (error.textContent = t("wizard.password.short"));
      if (pw.value !== pw2.value) return void (error.textContent = t("wizard.password.mismatch"));
    }
    if (step < total) {
      step += 1;
      return render();
    }
    next.disabled = true;
    const steps = [() => api.createIdentity(pw.value), () => api.addFolderPair(plain.value, mirror.value), () => api.unlockIdentity(pw.value)];
    for (const s of steps) {
      const r = await s();
      if (r.status === "error") {
        next.disabled = false;
        error.textContent = errorText(r.error);
        return;
      }
    }
    pw.value = pw2.value = "";
    done();
  });
  render();
  return form;
}
