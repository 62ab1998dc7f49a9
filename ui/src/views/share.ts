import type { Api, CandidateView, StatusView, VerdictView } from "../api";
import { h } from "../dom";
import { errorText, fileFailureText, noticeText, plural, refusalText, t, verdictText } from "../i18n";

type Failure = { code: string; message: string };

/** The trust of a key, in words, with the fingerprint to compare. */
function person(c: CandidateView): HTMLElement {
  const trust = h("span", { class: `trust trust-${c.trust}` }, t(`share.trust.${c.trust}`));
  return h(
    "div",
    { class: "person" },
    h("strong", { title: t(`share.kind.${c.kind}`) }, c.kind === "group" ? t("share.group", { name: c.name }) : c.name),
    c.who !== c.name ? h("span", { class: "muted" }, ` ${c.who}`) : "",
    " ",
    trust,
    c.fingerprint ? h("div", { class: "small" }, t("share.fingerprint"), " ", h("code", {}, c.fingerprint)) : "",
    c.detail ? h("div", { class: "small error" }, refusalText(c.detail)) : "",
  );
}

const usable = (c: CandidateView) => c.trust === "verified" || c.trust === "first_seen";

/** The share dialog for a folder pair: its label and members (each with
 * fingerprint and verification state), a directory search for colleagues
 * and groups, the changes to make, the policy's verdict on them before
 * confirming, and progress while files are updated. */
export function shareView(api: Api, status: StatusView): HTMLElement {
  const card = h("section", { class: "card", "aria-labelledby": "share-heading" });
  const note = h("p", { id: "share-note", class: "note", role: "status", "aria-live": "polite" });
  const error = h("p", { id: "share-error", class: "error", role: "alert" });
  const fail = (e: Failure) => {
    error.textContent = errorText(e);
  };
  const pairs = status.pairs;
  if (pairs.length === 0) {
    card.append(h("h1", { id: "share-heading" }, t("share.heading")), h("p", {}, t("share.no_pairs")));
    return card;
  }
  const pick = h("select", { id: "share-pair" }, ...pairs.map((p) => h("option", { value: p.id }, p.plain)));
  const label = h("p", { id: "share-label" });
  const members = h("ul", { id: "share-members", class: "people" });
  const query = h("input", { id: "share-query", type: "search", autocomplete: "off" });
  const results = h("ul", { id: "share-results", class: "people" });
  const changes = h("ul", { id: "share-changes", class: "people" });
  const verdicts = h("ul", { id: "share-verdicts", class: "people" });
  // What the last share said besides its counts (notices, files left as
  // they were), each in words.
  const outcome = h("ul", { id: "share-outcome", class: "people" });
  const rekey = h("input", { id: "share-rekey", type: "checkbox" });
  const bar = h("progress", { id: "share-progress", max: "1", value: "0", hidden: true });
  const review = h("button", { type: "button", id: "share-review" }, t("share.review"));
  const confirm = h("button", { type: "button", id: "share-confirm", disabled: true }, t("share.confirm"));
  const add = new Map<string, CandidateView>();
  const remove = new Set<string>();
  let reviewed = false;

  const changed = () => {
    reviewed = false;
    confirm.disabled = true;
    verdicts.replaceChildren();
    note.textContent = "";
    changes.replaceChildren(
      ...[...add.values()].map((c) =>
        h("li", {}, h("div", {}, h("span", { class: "nowrap" }, t("share.to_add")), " ", person(c)), h("button", { type: "button", class: "link", onclick: () => (add.delete(c.who), changed()) }, t("share.undo"))),
      ),
      ...[...remove].map((w) =>
        h("li", {}, h("div", {}, h("span", { class: "nowrap" }, t("share.to_remove")), " ", h("strong", {}, w)), h("button", { type: "button", class: "link", onclick: () => (remove.delete(w), changed()) }, t("share.undo"))),
      ),
    );
    review.disabled = add.size === 0 && remove.size === 0;
  };

  const load = async () => {
    error.textContent = "";
    members.replaceChildren(h("li", { class: "muted" }, t("share.loading")));
    const r = await api.getFolderShares(pick.value);
    if (r.status === "error") {
      members.replaceChildren();
      return fail(r.error);
    }
    label.textContent = r.data.label ? t("share.label", { label: r.data.label }) : t("share.no_label");
    members.replaceChildren(
      ...r.data.members.map((m) =>
        h(
          "li",
          {},
          person(m),
          // Keys without a name cannot be named here; and you do not remove yourself.
          m.kind === "key" || m.who === r.data.me
            ? ""
            : h("button", { type: "button", class: "link", onclick: () => (remove.add(m.who), changed()), "aria-label": t("share.remove_who", { who: m.who }) }, t("share.remove")),
        ),
      ),
    );
  };

  const search = h("form", { class: "search", role: "search" }, h("label", { for: "share-query" }, t("share.search")), query, h("button", { type: "submit" }, t("share.search_button")));
  search.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const r = await api.shareSearch(query.value);
    if (r.status === "error") return fail(r.error);
    results.replaceChildren(
      ...(r.data.length === 0
        ? [h("li", { class: "muted" }, t("share.no_results"))]
        : r.data.map((c) =>
            h(
              "li",
              {},
              person(c),
              h(
                "button",
                { type: "button", class: "link", disabled: !usable(c), onclick: () => (add.set(c.who, c), changed()), "aria-label": t("share.add_who", { who: c.who }) },
                t("share.add"),
              ),
            ),
          )),
    );
  });

  review.addEventListener("click", async () => {
    error.textContent = "";
    const r = await api.previewShare(pick.value, [...add.keys()]);
    if (r.status === "error") return fail(r.error);
    const verdict = (v: VerdictView) =>
      h("li", {}, person(v.candidate), h("div", { class: v.allowed ? "note" : "error" }, v.allowed ? t("share.allowed") : t("share.refused", { reason: v.reason ? verdictText(v.reason) : "" })));
    verdicts.replaceChildren(...r.data.map(verdict), ...[...remove].map((w) => h("li", {}, t("share.will_remove", { who: w }))));
    reviewed = r.data.every((v) => v.allowed);
    confirm.disabled = !reviewed;
  });

  confirm.addEventListener("click", async () => {
    if (!reviewed) return;
    outcome.replaceChildren();
    confirm.disabled = review.disabled = true;
    bar.hidden = false;
    const poll = setInterval(async () => {
      const p = await api.shareProgress();
      if (p.total > 0) {
        bar.max = p.total;
        bar.value = p.done;
        note.textContent = plural("share.progress", p.total, { done: p.done });
      }
    }, 250);
    const r = await api.applyShare(pick.value, [...add.keys()], [...remove], rekey.checked);
    clearInterval(poll);
    bar.hidden = true;
    review.disabled = false;
    if (r.status === "error") return fail(r.error);
    add.clear();
    remove.clear();
    changed();
    results.replaceChildren();
    query.value = "";
    note.textContent = t("share.done", {
      updated: plural("share.updated", r.data.files_updated),
      unchanged: plural("share.unchanged", r.data.files_unchanged),
    });
    if (r.data.files_failed.length) error.textContent = plural("share.some_failed", r.data.files_failed.length);
    outcome.replaceChildren(...r.data.notices.map((n) => h("li", {}, noticeText(n))), ...r.data.files_failed.map((f) => h("li", { class: "error" }, fileFailureText(f))));
    await load();
  });

  pick.addEventListener("change", () => {
    add.clear();
    remove.clear();
    changed();
    void load();
  });
  card.append(
    h("h1", { id: "share-heading" }, t("share.heading")),
    h("div", { class: "grid" }, h("label", { for: "share-pair" }, t("share.folder")), pick),
    label,
    h("h2", {}, t("share.members")),
    members,
    search,
    results,
    h("h2", {}, t("share.changes")),
    changes,
    h("div", { class: "check" }, rekey, h("label", { for: "share-rekey" }, t("share.rekey"))),
    verdicts,
    bar,
    error,
    note,
    outcome,
    h("p", { class: "muted small" }, t("share.after")),
    h("div", { class: "actions" }, review, confirm),
  );
  changed();
  void load();
  return card;
}
