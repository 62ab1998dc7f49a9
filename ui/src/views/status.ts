import type { ActivityView, Api, ConflictView, StatusView } from "../api";
import { h } from "../dom";
import { actionText, alertText, errorText, language, plural, problemText, skipText, t } from "../i18n";

function when(ms: number): string {
  return new Date(ms).toLocaleString(language());
}

function section(id: string, title: string, ...body: (Node | string)[]): HTMLElement {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...body);
}

/** The status window: state, folder pairs, conflicts, skipped files, activity. */
export function statusView(
  api: Api,
  s: StatusView,
  conflicts: ConflictView[],
  activity: ActivityView[],
  refresh: () => void,
): HTMLElement {
  const error = h("p", { class: "error", role: "alert" });
  const act = (f: () => Promise<{ status: string; error?: { code: string; message: string } }>) => async () => {
    const r = await f();
    if (r.status === "error" && r.error) error.textContent = errorText(r.error);
    refresh();
  };
  const tray = s.tray;
  const synced = s.pairs.reduce((n, p) => n + p.synced_files, 0);
  const header = h(
    "section",
    { class: `card state state-${tray.kind}`, "aria-labelledby": "state-heading" },
    h("h1", { id: "state-heading" }, h("span", { class: "dot", "aria-hidden": "true" }), t(`state.${tray.kind}`)),
    h(
      "p",
      { id: "state-counts" },
      t("status.counts", {
        synced: plural("status.synced", synced),
        pending: plural("status.pending", tray.pending),
        conflicts: plural("status.conflict_count", tray.conflicts),
      }),
    ),
    s.in_process ? null : h("p", { class: "muted" }, t("status.remote_agent")),
    h(
      "div",
      { class: "actions" },
      tray.paused
        ? h("button", { id: "resume", onclick: act(() => api.resumeSync(false)) }, t("status.resume"))
        : h("button", { id: "pause", onclick: act(() => api.pauseSync()) }, t("status.pause")),
      tray.locked ? null : h("button", { id: "lock", onclick: act(() => api.lockIdentity()) }, t("status.lock")),
    ),
    error,
  );
  const pairs = section(
    "pairs-heading",
    t("status.pairs"),
    s.pairs.length === 0
      ? h("p", {}, t("status.no_pairs"))
      : h(
          "ul",
          { class: "pairs" },
          ...s.pairs.map((p) =>
            h(
              "li",
              { class: "pair" },
              h("div", { class: "pair-state" }, t(`pair.state.${p.state}`), p.alert ? h("span", { class: "alert" }, ` — ${alertText(p.alert)}`) : null),
              h(
                "dl",
                {},
                h("dt", {}, t("status.plain")),
                h("dd", {}, h("code", {}, p.plain), " ", h("button", { class: "link", "aria-label": `${t("status.open")} ${t("status.plain")}`, onclick: act(() => api.openFolder(p.id, "plain")) }, t("status.open"))),
                h("dt", {}, t("status.mirror")),
                h("dd", {}, h("code", {}, p.mirror), " ", h("button", { class: "link", "aria-label": `${t("status.open")} ${t("status.mirror")}`, onclick: act(() => api.openFolder(p.id, "mirror")) }, t("status.open"))),
              ),
              p.errors.length ? h("ul", { class: "errors", "aria-label": t("status.errors") }, ...p.errors.map((e) => h("li", {}, h("code", {}, e.path), `: ${problemText(e)}`))) : null,
            ),
          ),
        ),
  );
  const conflictList = section(
    "conflicts-heading",
    t("status.conflicts"),
    conflicts.length === 0
      ? h("p", {}, t("status.conflicts.none"))
      : h(
          "ul",
          { id: "conflicts" },
          ...conflicts.map((c) =>
            h("li", {}, h("code", {}, c.copy), " ", h("button", { onclick: act(() => api.openConflict(c.pair, c.copy)) }, t("status.conflicts.open_both"))),
          ),
        ),
  );
  const skipped = s.pairs.flatMap((p) => [...p.not_shared.map((f) => `${f}: ${t("status.not_shared")}`), ...p.skipped.map((k) => `${k.path}: ${skipText(k)}`)]);
  const skippedList = section(
    "skipped-heading",
    t("status.skipped"),
    skipped.length === 0 ? h("p", {}, t("status.skipped.none")) : h("ul", { id: "skipped" }, ...skipped.map((k) => h("li", {}, h("code", {}, k)))),
  );
  const activityList = section(
    "activity-heading",
    t("status.activity"),
    activity.length === 0
      ? h("p", {}, t("status.activity.none"))
      : h(
          "ol",
          { id: "activity", class: "activity" },
          ...activity.slice(0, 50).map((a) =>
            h("li", {}, h("span", { class: "action" }, actionText(a.action)), " ", h("code", {}, a.path), " ", h("time", { datetime: new Date(a.at_ms ?? 0).toISOString() }, when(a.at_ms ?? 0))),
          ),
        ),
  );
  return h("div", { class: "stack" }, header, pairs, conflictList, activityList, skippedList);
}
