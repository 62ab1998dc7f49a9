import type { Api } from "../api";
import { h } from "../dom";
import { errorText, t } from "../i18n";

/** The unlock prompt. `done` runs after a successful unlock. */
export function unlockView(api: Api, done: () => void): HTMLElement {
  const input = h("input", { id: "unlock-password", type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { id: "unlock-error", class: "error", role: "alert", "aria-live": "assertive" });
  const button = h("button", { type: "submit", id: "unlock-submit" }, t("unlock.submit"));
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "unlock-heading" },
    h("h1", { id: "unlock-heading" }, t("unlock.heading")),
    h("p", {}, t("unlock.explain")),
    h("label", { for: "unlock-password" }, t("unlock.password")),
    input,
    error,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    button.disabled = true;
    button.textContent = t("unlock.busy");
    const r = await api.unlockIdentity(input.value);
    button.disabled = false;
    button.textContent = t("unlock.submit");
    if (r.status === "ok") {
      input.value = "";
      done();
    } else {
      error.textContent = errorText(r.error);
      input.select();
      input.focus();
    }
  });
  queueMicrotask(() => input.focus());
  return form;
}
