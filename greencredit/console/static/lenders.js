// Lender index: links to each lender's AHP page.
"use strict";

(() => {
  const href = (tenant) => `/lenders/${encodeURIComponent(tenant)}`;

  async function load() {
    const result = await GC.api("/api/lenders");
    if (!result.ok) return;
    GC.replaceChildren(document.querySelector("#lenders tbody"), result.data.lenders.map((l) =>
      GC.el("tr", {"data-tenant": l.tenant_id},
        GC.el("td", {}, GC.el("a", {href: href(l.tenant_id)}, l.tenant_id)),
        GC.el("td", {class: "num"}, l.config_version),
        GC.el("td", {}, l.published ? "published" : "default"))));
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("open-lender").addEventListener("submit", (event) => {
      event.preventDefault();
      const tenant = document.getElementById("lender-id").value.trim();
      if (tenant) location.href = href(tenant);
    });
    load();
  });
})();
