import type { Api, EnrolledView, FolderSuggestion } from "../api";
import { h } from "../dom";
import { errorText, t } from "../i18n";

type Where = "local" | "org";
type How = "register" | "login";

/** A labelled radio button. */
function radio(name: string, value: string, label: string, checked: boolean): HTMLElement {
  const id = `${name}-${value}`;
  const input = h("input", { type: "radio", name, value, id });
  input.checked = checked;
  return h("div", { class: "check" }, input, h("label", { for: id }, label));
}

function chosen(form: HTMLElement, name: string): string {
  return form.querySelector<HTMLInputElement>(`input[name="${name}"]:checked`)?.value ?? "";
}

/** First run, in four steps:
 * 1. where the account lives: this computer only, or the organisation's
 *    Kluis server (an invite, or its address and organisation key), and
 *    whether to register or log in;
 * 2. the password (and for an organisation the e-mail address and name) —
 *    registering or logging in happens when this step is confirmed;
 * 3. the folders (Dropbox and OneDrive folders found are offered);
 * 4. plainly, who can recover the key. */
export function wizardView(api: Api, suggestion: FolderSuggestion, done: () => void): HTMLElement {
  const total = 4;
  let step = 1;
  let where: Where = "local";
  let how: How = "register";
  let enrolled: EnrolledView | null = null;
  const input = (id: string, type: string, extra: Record<string, string> = {}) => h("input", { id, type, ...extra });
  const invite = h("textarea", { id: "wizard-invite", rows: "2", spellcheck: "false", autocapitalize: "off" });
  const url = input("wizard-url", "url", { placeholder: "https://kluis.example.org" });
  const orgKey = input("wizard-org-key", "text", { spellcheck: "false", autocapitalize: "off" });
  const email = input("wizard-email", "email", { autocomplete: "username" });
  const name = input("wizard-name", "text", { autocomplete: "name" });
  const pw = input("wizard-password", "password", { autocomplete: "new-password", required: "", minlength: "8" });
  const pw2 = input("wizard-password2", "password", { autocomplete: "new-password", required: "" });
  const plain = input("wizard-plain", "text", { required: "" });
  const mirror = input("wizard-mirror", "text", { required: "" });
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
  const orgFields = h(
    "div",
    { id: "wizard-org", class: "stack" },
    h("label", { for: "wizard-invite" }, t("wizard.account.invite")),
    invite,
    h(
      "details",
      {},
      h("summary", {}, t("wizard.account.no_invite")),
      h("label", { for: "wizard-url" }, t("wizard.account.url")),
      url,
      h("label", { for: "wizard-org-key" }, t("wizard.account.org_key")),
      orgKey,
    ),
    h(
      "fieldset",
      {},
      h("legend", {}, t("wizard.account.how")),
      radio("wizard-how", "register", t("wizard.account.register"), true),
      radio("wizard-how", "login", t("wizard.account.login"), false),
    ),
  );
  const whereSet = h(
    "fieldset",
    {},
    h("legend", { class: "sr-only" }, t("wizard.account.heading")),
    radio("wizard-where", "local", t("wizard.account.local"), true),
    radio("wizard-where", "org", t("wizard.account.org"), false),
  );
  const showOrg = () => {
    orgFields.hidden = chosen(form, "wizard-where") !== "org";
  };
  whereSet.addEventListener("change", showOrg);
  // A message about what was typed before goes once the person types again.
  form.addEventListener("input", () => (error.textContent = ""));
  const labelled = (id: string, key: string, el: HTMLElement) => [h("label", { for: id }, t(key)), el];
  const render = () => {
    stepLine.textContent = t("wizard.step", { n: step, total });
    // Once the account exists, going back to steps 1–2 would make it again.
    back.hidden = step === 1 || (enrolled !== null && step === 3);
    next.textContent = step === total ? t("wizard.finish") : t("wizard.next");
    error.textContent = "";
    if (step === 1) {
      body.replaceChildren(h("h2", {}, t("wizard.account.heading")), h("p", {}, t("wizard.account.explain")), whereSet, orgFields);
      showOrg();
      form.querySelector<HTMLInputElement>('input[name="wizard-where"]:checked')?.focus();
    } else if (step === 2 && where === "local") {
      body.replaceChildren(
        h("h2", {}, t("wizard.password.heading")),
        h("p", {}, t("wizard.password.explain")),
        ...labelled("wizard-password", "wizard.password.new", pw),
        ...labelled("wizard-password2", "wizard.password.repeat", pw2),
      );
      pw.focus();
    } else if (step === 2) {
      pw.setAttribute("autocomplete", how === "register" ? "new-password" : "current-password");
      body.replaceChildren(
        h("h2", {}, t(how === "register" ? "wizard.account.register" : "wizard.account.login")),
        h("p", {}, t(how === "register" ? "wizard.account.register_explain" : "wizard.account.login_explain")),
        ...labelled("wizard-email", "wizard.account.email", email),
        ...(how === "register" ? labelled("wizard-name", "wizard.account.name", name) : []),
        ...labelled("wizard-password", how === "register" ? "wizard.password.new" : "wizard.account.password", pw),
        ...(how === "register" ? labelled("wizard-password2", "wizard.password.repeat", pw2) : []),
      );
      email.focus();
    } else if (step === 3) {
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
        ...labelled("wizard-plain", "wizard.folders.plain", plain),
        ...labelled("wizard-mirror", "wizard.folders.mirror", mirror),
        found,
      );
      plain.focus();
    } else {
      const recovery = enrolled === null ? "wizard.recovery.none" : enrolled.recovery_enrolled ? "wizard.recovery.org" : "wizard.recovery.not_enrolled";
      body.replaceChildren(
        h("h2", {}, t("wizard.recovery.heading")),
        h("p", { id: "wizard-recovery", class: "callout" }, t(recovery)),
        ...(enrolled
          ? [
              h("p", {}, t("wizard.account.fingerprint", { email: enrolled.email })),
              h("p", {}, h("code", { id: "wizard-fingerprint" }, enrolled.fingerprint)),
            ]
          : []),
      );
      next.focus();
    }
  };
  back.addEventListener("click", () => {
    step = Math.max(1, step - 1);
    render();
  });
  const fail = (e: { code: string; message: string }) => {
    next.disabled = false;
    error.textContent = errorText(e);
  };
  /** Register or log in with the organisation's broker (end of step 2). */
  const enrol = async (): Promise<boolean> => {
    const broker = { invite: invite.value.trim() || null, url: url.value.trim() || null, org_key: orgKey.value.trim() || null };
    next.disabled = true;
    const r = how === "register" ? await api.registerAccount(broker, email.value, name.value, pw.value) : await api.loginAccount(broker, email.value, pw.value);
    if (r.status === "error") {
      fail(r.error);
      return false;
    }
    next.disabled = false;
    enrolled = r.data;
    pw2.value = "";
    return true;
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (step === 1) {
      where = chosen(form, "wizard-where") === "org" ? "org" : "local";
      how = chosen(form, "wizard-how") === "login" ? "login" : "register";
      if (where === "org" && !invite.value.trim() && !(url.value.trim() && orgKey.value.trim())) {
        return void (error.textContent = t("error.no_broker"));
      }
    }
    if (step === 2) {
      const creating = where === "local" || how === "register";
      if (where === "org" && !email.value.trim()) return void (error.textContent = t("wizard.account.email_missing"));
      if (creating && pw.value.length < 8) return void (error.textContent = t("wizard.password.short"));
      if (creating && pw.value !== pw2.value) return void (error.textContent = t("wizard.password.mismatch"));
      if (where === "org" && !(await enrol())) return;
    }
    if (step < total) {
      step += 1;
      return render();
    }
    next.disabled = true;
    const steps = [
      ...(where === "local" ? [() => api.createIdentity(pw.value)] : []),
      () => api.addFolderPair(plain.value, mirror.value),
      () => api.unlockIdentity(pw.value),
    ];
    for (const s of steps) {
      const r = await s();
      if (r.status === "error") return fail(r.error);
    }
    pw.value = pw2.value = "";
    done();
  });
  render();
  return form;
}
