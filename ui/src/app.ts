import type { Api } from "./api";
import { h } from "./dom";
import { errorText, setLanguage, t } from "./i18n";
import { settingsView } from "./views/settings";
import { shareView } from "./views/share";
import { statusView } from "./views/status";
import { unlockView } from "./views/unlock";
import { wizardView } from "./views/wizard";

export type View = "status" | "share" | "settings" | "unlock" | "wizard";

/** The window: a navigation bar and one view at a time. */
export class App {
  view: View = "status";
  private main = h("main", { id: "main", tabindex: "-1" });
  private nav = h("nav", { "aria-label": "" });
  private refreshing = false;
  /** What the current view was last rendered from: a refresh that finds the
   * same data leaves the DOM alone, so keyboard focus and the element a user
   * (or a WebDriver test) is about to click survive the 2 s poll. */
  private rendered = "";
  private navRendered = "";

  constructor(
    private api: Api,
    root: HTMLElement,
  ) {
    root.replaceChildren(this.nav, this.main);
  }

  /** Load settings (language), then show what the state asks for. */
  async start(): Promise<void> {
    const st = await this.api.getSettings();
    setLanguage(st.language);
    await this.go(null);
  }

  /** Show `view`, or (null) whatever the engine's state calls for. */
  async go(view: View | null, onlyIfChanged = false): Promise<void> {
    const s = await this.api.getStatus();
    if (s.status === "error") {
      this.main.replaceChildren(h("p", { class: "error", role: "alert" }, errorText(s.error)));
      return;
    }
    const status = s.data;
    let v: View = view ?? this.view;
    if (!status.has_identity) v = "wizard";
    else if (status.tray.locked && v !== "settings") v = "unlock";
    else if (v === "unlock" || v === "wizard") v = "status";
    this.view = v;
    this.renderNav(status.has_identity);
    let el: HTMLElement;
    switch (v) {
      case "wizard": {
        const sug = await this.api.suggestFolders();
        if (sug.status === "error") {
          el = h("p", { class: "error", role: "alert" }, errorText(sug.error));
          break;
        }
        el = wizardView(this.api, sug.data, () => void this.go("status"));
        break;
      }
      case "unlock":
        el = unlockView(this.api, () => void this.go("status"));
        break;
      case "settings": {
        const st = await this.api.getSettings();
        setLanguage(st.language);
        this.renderNav(status.has_identity);
        el = settingsView(
          this.api,
          st,
          status,
          () => void this.start(),
          () => void this.go("unlock"),
        );
        break;
      }
      case "share":
        el = shareView(this.api, status);
        break;
      default: {
        const [c, a] = await Promise.all([this.api.getConflicts(), this.api.getActivity(50)]);
        const sig = JSON.stringify([v, status, c, a]);
        if (onlyIfChanged && sig === this.rendered) return;
        this.rendered = sig;
        el = statusView(
          this.api,
          status,
          c.status === "ok" ? c.data : [],
          a.status === "ok" ? a.data : [],
          () => void this.refresh(),
        );
      }
    }
    if (v !== "status") this.rendered = "";
    // Keep focus on the control that had it, if the new view has it too.
    const focused = document.activeElement?.id;
    this.main.replaceChildren(el);
    if (focused) document.getElementById(focused)?.focus();
  }

  /** Re-render the current view when the engine's state changed (not while typing). */
  async refresh(): Promise<void> {
    // The wizard, Settings and the share dialog hold what the person typed or
    // chose: they are never redrawn under them.
    if (this.refreshing || this.view === "wizard" || this.view === "settings" || this.view === "share") return;
    // The unlock prompt stays as it is (typed text, error) while still locked.
    if (this.view === "unlock") {
      const s = await this.api.getStatus();
      if (s.status === "ok" && s.data.tray.locked) return;
    }
    this.refreshing = true;
    try {
      await this.go(null, true);
    } finally {
      this.refreshing = false;
    }
  }

  private renderNav(hasIdentity: boolean): void {
    const sig = JSON.stringify([hasIdentity, this.view, t("nav.label")]);
    if (sig === this.navRendered) return;
    this.navRendered = sig;
    this.nav.setAttribute("aria-label", t("nav.label"));
    if (!hasIdentity) {
      this.nav.replaceChildren(h("span", { class: "brand" }, t("app.title")));
      return;
    }
    const tab = (v: View, key: string) =>
      h(
        "button",
        { id: `nav-${v}`, class: "tab", "aria-current": this.view === v ? "page" : "false", onclick: () => void this.go(v) },
        t(key),
      );
    this.nav.replaceChildren(
      h("span", { class: "brand" }, t("app.title")),
      tab("status", "nav.status"),
      tab("share", "nav.share"),
      tab("settings", "nav.settings"),
    );
  }
}
