// Case list: filters live in the URL (shareable); the list refreshes every 2 seconds.
"use strict";

(() => {
  const FILTERS = ["lender", "severity", "typology", "status"];
  const REFRESH_MS = 2000;
  let timer = null;

  function selected() {
    const out = {};
    for (const name of FILTERS) out[name] = document.getElementById(`filter-${name}`).value;
    return out;
  }

  function fromUrl() {
    const params = new URLSearchParams(location.search);
    for (const name of FILTERS) {
      const value = params.get(name);
      if (value === null) continue;
      const select = document.getElementById(`filter-${name}`);
      ensureOption(select, value);
      select.value = value;
    }
  }

  function ensureOption(select, value) {
    if (value && ![...select.options].some((o) => o.value === value)) {
      select.append(GC.el("option", {value}, value));
    }
  }

  function fillOptions(name, values) {
    const select = document.getElementById(`filter-${name}`);
    const keep = select.value;
    for (const value of values) ensureOption(select, value);
    select.value = keep;
  }

  function row(c) {
    const link = GC.el("a", {href: `/cases/${encodeURIComponent(c.case_id)}`}, GC.time(c.occurred_at));
    const reasons = c.reasons.map((r) => r.code).join(", ");
    const customer = c.customer_id || c.card_masked || c.device_ref || "";
    return GC.el("tr", {"data-case-id": c.case_id, class: `status-${c.status}`},
      GC.el("td", {}, link),
      GC.el("td", {}, c.tenant_id),
      GC.el("td", {}, GC.el("span", {class: `badge sev-${c.severity}`}, c.severity)),
      GC.el("td", {}, c.typology),
      GC.el("td", {}, c.source),
      GC.el("td", {class: "num"}, GC.score(c.score)),
      GC.el("td", {}, reasons),
      GC.el("td", {}, customer),
      GC.el("td", {}, c.owner || ""),
      GC.el("td", {}, c.status === "closed" ? `closed: ${c.resolution}` : c.status.replace("_", " ")));
  }

  async function refresh() {
    const filters = selected();
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
    history.replaceState(null, "", `/cases?${query}`);
    const result = await GC.api(`/api/cases?${query}`);
    const summary = document.getElementById("summary");
    if (!result.ok) {
      summary.textContent = `Could not load cases: ${result.data.error}`;
      summary.className = "bad";
      return;
    }
    const data = result.data;
    fillOptions("lender", data.facets.lenders);
    fillOptions("severity", data.facets.severities);
    fillOptions("typology", data.facets.typologies);
    GC.replaceChildren(document.querySelector("#cases tbody"), data.cases.map(row));
    summary.className = "muted";
    summary.textContent = `${data.cases.length} shown · ${data.counts.open} open, ` +
      `${data.counts.in_progress} in progress, ${data.counts.closed} closed · ` +
      `refreshed ${new Date().toLocaleTimeString()}`;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => { await refresh(); schedule(); }, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", async () => {
    fromUrl();
    document.getElementById("filters").addEventListener("change", async () => {
      await refresh();
      schedule();
    });
    await refresh();
    schedule();
  });
})();
