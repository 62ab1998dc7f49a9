import { h } from "../dom";
import { t } from "../i18n";

/** Sharing from the app: not wired in this version; says so and points to the CLI. */
export function shareView(): HTMLElement {
  return h(
    "section",
    { class: "card", "aria-labelledby": "share-heading" },
    h("h1", { id: "share-heading" }, t("share.heading")),
    h("p", {}, t("share.unavailable")),
    h("pre", {}, "kluis share <folder> <colleague@example.org>"),
  );
}
