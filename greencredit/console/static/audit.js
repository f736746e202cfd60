// The audit, newest first, one page at a time (admin only).
"use strict";

(() => {
  let before = null;

  async function more() {
    const query = new URLSearchParams({limit: "50"});
    if (before !== null) query.set("before", String(before));
    const result = await GC.api(`/api/audit?${query}`);
    if (!result.ok) {
      const box = document.getElementById("audit-error");
      box.hidden = false;
      box.textContent = result.data.error;
      return;
    }
    const body = document.querySelector("#audit tbody");
    for (const e of result.data.entries) {
      body.append(GC.el("tr", {"data-audit-id": e.id, "data-action": e.action},
        GC.el("td", {}, GC.time(e.at)), GC.el("td", {}, e.actor), GC.el("td", {}, e.action),
        GC.el("td", {}, e.tenant_id || ""), GC.el("td", {}, e.target || ""),
        GC.el("td", {}, e.address || ""), GC.el("td", {}, JSON.stringify(e.detail))));
    }
    before = result.data.next_before;
    document.getElementById("audit-older").hidden = before === null;
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("audit-older").addEventListener("click", more);
    more();
  });
})();
