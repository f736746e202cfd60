// One case: its facts, reason codes and decision record, and the two label buttons.
"use strict";

(() => {
  const caseId = GC.pathId();
  // Nested maps of a decision record get their own tables; everything else is a fact.
  const MAPS = ["indicators", "features", "model_versions"];
  let session = null;

  function facts(list, pairs) {
    GC.replaceChildren(list, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .flatMap(([k, v]) => [GC.el("dt", {}, k), GC.el("dd", {}, typeof v === "object" ? JSON.stringify(v) : v)]));
  }

  function mapTable(title, map) {
    const rows = Object.entries(map).map(([k, v]) =>
      GC.el("tr", {}, GC.el("td", {}, k), GC.el("td", {class: "num"}, typeof v === "number" ? v.toFixed(4) : v)));
    return GC.el("div", {},
      GC.el("h2", {}, title),
      GC.el("table", {"data-map": title}, GC.el("tbody", {}, rows)));
  }

  function render(c) {
    document.title = `${c.case_id} · greencredit console`;
    document.getElementById("case-title").textContent = `Case ${c.case_id}`;
    facts(document.getElementById("case-facts"), [
      ["lender", c.tenant_id], ["kind", c.kind], ["source", c.source], ["severity", c.severity],
      ["score", GC.score(c.score)], ["typologies", c.typologies.join(", ")],
      ["occurred at (UTC)", GC.time(c.occurred_at)], ["customer", c.customer_id],
      ["card", c.card_masked], ["device", c.device_ref],
      ["labelled event", `${c.subject_type || "?"} ${c.subject_event_id}`],
    ]);
    GC.replaceChildren(document.querySelector("#case-reasons tbody"), c.reasons.map((r) =>
      GC.el("tr", {}, GC.el("td", {}, r.code), GC.el("td", {class: "num"}, r.contribution.toFixed(4)))));
    const record = c.record;
    facts(document.getElementById("case-record"), Object.entries(record)
      .filter(([k]) => !MAPS.includes(k) && k !== "reasons"));
    GC.replaceChildren(document.getElementById("case-maps"),
      MAPS.filter((k) => record[k] && typeof record[k] === "object").map((k) => mapTable(k, record[k])));
    renderStatus(c);
    renderWork(c);
    document.getElementById("case-body").hidden = false;
  }

  function renderWork(c) {
    const status = c.status.replace("_", " ");
    document.getElementById("case-work-status").textContent =
      `Status: ${status}${c.resolution ? ` (${c.resolution})` : ""} · owner: ${c.owner || "nobody"}`;
    const closed = c.status === "closed";
    const me = session ? session.user.username : null;
    const supervisor = GC.hasRole(session, "supervisor");
    document.getElementById("take-case").disabled = closed || c.owner === me ||
      (c.owner !== null && !supervisor);
    document.getElementById("start-work").disabled = c.status !== "open";
    document.getElementById("close-case").disabled = closed;
    document.getElementById("reopen-case").hidden = !(closed && supervisor);
    document.getElementById("reassign").hidden = !supervisor;
    GC.replaceChildren(document.getElementById("case-timeline"), c.timeline.map((e) =>
      GC.el("li", {"data-action": e.action}, `${GC.time(e.at)} ${e.actor} ${e.action}` +
        (e.action === "comment" ? `: ${e.detail.text}` : "") +
        (e.action === "assigned" ? ` → ${e.detail.owner || "nobody"}` : "") +
        (e.action === "status" || e.action === "reopened" ? ` → ${e.detail.status}` : "") +
        (e.action === "labelled" ? ` ${e.detail.label}` : ""))));
  }

  async function work(path, body) {
    const result = await GC.api(`/api/cases/${encodeURIComponent(caseId)}/${path}`, body);
    const box = document.getElementById("work-result");
    box.hidden = result.ok;
    if (!result.ok) {
      box.className = "message bad";
      box.textContent = `Not done: ${result.data.error}`;
      return false;
    }
    render(result.data);
    return true;
  }

  function renderStatus(c) {
    const status = document.getElementById("case-status");
    const help = document.getElementById("label-help");
    const buttons = [document.getElementById("confirm-fraud"), document.getElementById("mark-legitimate")];
    if (c.labelled) {
      status.className = "ok";
      status.textContent = `Closed as ${c.labelled.label} by ${c.labelled.analyst_id}` +
        (c.labelled.labelled_at ? ` at ${GC.time(c.labelled.labelled_at)}` : "");
    } else {
      status.className = "";
      status.textContent = "Not labelled";
    }
    if (c.labels) {
      help.textContent = `Confirm fraud sends ${c.labels.fraud}, mark legitimate sends ` +
        `${c.labels.legitimate} for this ${c.subject_type.toLowerCase()} (the online model learns from it).`;
    } else {
      help.textContent = "This alert names no scored event; it cannot be labelled here.";
    }
    for (const button of buttons) button.disabled = Boolean(c.labelled) || !c.labels;
  }

  function showResult(text, ok) {
    const box = document.getElementById("label-result");
    box.hidden = false;
    box.className = `message ${ok ? "ok" : "bad"}`;
    box.textContent = text;
  }

  async function label(verdict) {
    const buttons = [document.getElementById("confirm-fraud"), document.getElementById("mark-legitimate")];
    for (const button of buttons) button.disabled = true;  // one request at a time
    const result = await GC.api(`/api/cases/${encodeURIComponent(caseId)}/label`, {verdict});
    if (!result.ok) {
      showResult(`Not labelled: ${result.data.error}`, false);
      for (const button of buttons) button.disabled = false;
      return;
    }
    const d = result.data;
    showResult(d.published ? `Published ${d.label} (feedback event ${d.event_id}).`
      : `Already labelled ${d.label} (feedback event ${d.event_id}); nothing sent again.`, true);
    render(d.case);
  }

  async function load() {
    session = await GC.session();
    const result = await GC.api(`/api/cases/${encodeURIComponent(caseId)}`);
    if (!result.ok) {
      const box = document.getElementById("case-error");
      box.hidden = false;
      box.textContent = result.data.error;
      return;
    }
    render(result.data);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("confirm-fraud").addEventListener("click", () => label("fraud"));
    document.getElementById("mark-legitimate").addEventListener("click", () => label("legitimate"));
    document.getElementById("take-case").addEventListener("click",
      () => work("assign", {owner: session.user.username}));
    document.getElementById("start-work").addEventListener("click",
      () => work("status", {status: "in_progress"}));
    document.getElementById("close-case").addEventListener("click", () => work("status",
      {status: "closed", resolution: document.getElementById("close-resolution").value}));
    document.getElementById("reopen-case").addEventListener("click",
      () => work("status", {status: "open"}));
    document.getElementById("reassign-button").addEventListener("click", () => work("assign",
      {owner: document.getElementById("reassign-owner").value.trim() || null}));
    document.getElementById("add-comment").addEventListener("click", async () => {
      const field = document.getElementById("comment-text");
      if (await work("comments", {text: field.value})) field.value = "";
    });
    load();
  });
})();
