// A lender's AHP judgements: edit the upper triangle, see CR recomputed by the server
// (models/ahp.py) as you type, propose a consistent set as the next config version.
"use strict";

(() => {
  const tenant = GC.pathId();
  const api = `/api/lenders/${encodeURIComponent(tenant)}`;
  const NUMBER = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(\d+(?:\.\d+)?)\s*)?$/;
  let lender = null;
  let sequence = 0;
  let debounce = null;

  function parse(text) {
    const match = NUMBER.exec(text);
    if (!match) return NaN;
    const value = Number(match[1]) / (match[2] === undefined ? 1 : Number(match[2]));
    return Number.isFinite(value) && value > 0 ? value : NaN;
  }

  // A judgement the way a person writes it: 3, 1/3, 2.5.
  function fmt(value) {
    if (!Number.isFinite(value) || value <= 0) return "?";
    const big = value >= 1 ? value : 1 / value;
    const whole = Math.round(big);
    const text = Math.abs(big - whole) <= 5e-3 * big ? String(whole) : String(+big.toPrecision(3));
    return value >= 1 || text === "1" ? text : `1/${text}`;
  }

  function inputs() {
    return [...document.querySelectorAll("#nodes input[data-node]")];
  }

  function renderNodes() {
    const blocks = lender.nodes.map((node) => {
      if (!node.matrix) {
        const weights = Object.entries(node.weights || {}).map(([k, v]) => `${k} ${v}`).join(", ");
        return GC.el("div", {class: "node", "data-node": node.name},
          GC.el("h3", {}, node.name),
          GC.el("p", {class: "muted"}, `Direct weights (not pairwise, not edited here): ${weights}`));
      }
      const names = node.criteria;
      const head = GC.el("tr", {}, GC.el("th", {}, ""), names.map((n) => GC.el("th", {}, n)));
      const rows = names.map((rowName, i) => GC.el("tr", {}, GC.el("th", {}, rowName),
        names.map((colName, j) => {
          if (i === j) return GC.el("td", {}, "1");
          if (i < j) {
            return GC.el("td", {}, GC.el("input", {
              value: fmt(node.matrix[i][j]), "data-node": node.name, "data-row": i, "data-col": j,
              "aria-label": `${node.name}: ${rowName} vs ${colName}`, inputmode: "decimal",
            }));
          }
          return GC.el("td", {class: "mirror", "data-node": node.name, "data-row": i, "data-col": j},
            fmt(node.matrix[i][j]));
        })));
      return GC.el("div", {class: "node", "data-node": node.name},
        GC.el("h3", {}, `${node.name} `, GC.el("span", {class: "cr", "data-cr-node": node.name}, "")),
        GC.el("table", {class: "matrix"}, GC.el("thead", {}, head), GC.el("tbody", {}, rows)));
    });
    GC.replaceChildren(document.getElementById("nodes"), blocks);
    for (const input of inputs()) input.addEventListener("input", scheduleCheck);
  }

  // Full matrices from the typed upper triangle; the mirror is the reciprocal.
  function matrices() {
    const out = {};
    for (const node of lender.nodes.filter((n) => n.matrix)) {
      const n = node.criteria.length;
      out[node.name] = Array.from({length: n}, (_, i) => Array.from({length: n}, (_, j) => (i === j ? 1 : null)));
    }
    for (const input of inputs()) {
      const m = out[input.dataset.node];
      const i = Number(input.dataset.row);
      const j = Number(input.dataset.col);
      const value = parse(input.value);
      m[i][j] = input.value.trim();
      m[j][i] = Number.isFinite(value) ? 1 / value : "?";
      const mirror = document.querySelector(
        `td.mirror[data-node="${CSS.escape(input.dataset.node)}"][data-row="${j}"][data-col="${i}"]`);
      if (mirror) mirror.textContent = Number.isFinite(value) ? fmt(1 / value) : "?";
    }
    return out;
  }

  function showReport(report) {
    for (const input of inputs()) input.classList.remove("invalid");
    for (const badge of document.querySelectorAll("[data-cr-node]")) {
      const node = report.nodes ? report.nodes[badge.dataset.crNode] : null;
      badge.textContent = node ? `CR ${node.cr.toFixed(3)}` : "CR –";
      badge.className = `cr ${node ? (node.consistent ? "ok" : "bad") : "muted"}`;
    }
    document.getElementById("cr-total").textContent =
      typeof report.cr_total === "number" ? report.cr_total.toFixed(3) : "–";
    const status = document.getElementById("ahp-status");
    if (report.valid && report.consistent) {
      status.className = "message ok";
      status.textContent = `Consistent (CR_total ${report.cr_total.toFixed(3)} < 0.10): can be published.`;
    } else {
      status.className = "message bad";
      status.textContent = `${report.valid ? "Inconsistent" : "Invalid"}: ${report.error}`;
    }
    if (report.cell) {
      const [row, col] = report.cell.row < report.cell.col
        ? [report.cell.row, report.cell.col] : [report.cell.col, report.cell.row];
      const input = document.querySelector(`#nodes input[data-node="${CSS.escape(report.cell.node)}"]` +
        `[data-row="${row}"][data-col="${col}"]`);
      if (input) input.classList.add("invalid");
    }
    const weights = Object.entries(report.leaf_weights || {}).sort((a, b) => b[1] - a[1]);
    GC.replaceChildren(document.querySelector("#leaf-weights tbody"), weights.map(([name, w]) =>
      GC.el("tr", {}, GC.el("td", {}, name), GC.el("td", {class: "num"}, w.toFixed(4)))));
  }

  function scheduleCheck() {
    clearTimeout(debounce);
    debounce = setTimeout(check, 150);
  }

  async function check() {
    const mine = ++sequence;
    const result = await GC.api(`${api}/ahp`, {matrices: matrices()});
    if (mine !== sequence) return;  // a newer edit is on its way
    if (result.ok) showReport(result.data);
    else showReport({valid: false, consistent: false, error: result.data.error});
  }

  function thresholds() {
    const out = {};
    for (const input of document.querySelectorAll("#thresholds input[data-threshold]")) {
      const value = Number(input.value);
      if (input.value.trim() !== "" && value !== lender.thresholds[input.dataset.threshold]) {
        out[input.dataset.threshold] = value;
      }
    }
    return out;
  }

  function say(text, ok) {
    const box = document.getElementById("publish-result");
    box.hidden = false;
    box.className = `message ${ok ? "ok" : "bad"}`;
    box.textContent = text;
  }

  async function propose() {
    const button = document.getElementById("propose");
    button.disabled = true;
    const result = await GC.api(`${api}/proposals`,
      {base_version: lender.config_version, matrices: matrices(), thresholds: thresholds()});
    if (result.ok) {
      say(`Proposed #${result.data.id} (CR_total ${result.data.cr_total.toFixed(3)}); ` +
        "it is published when another person approves it.", true);
      await loadProposals();
    } else {
      say(`Refused: ${result.data.error}`, false);
    }
    button.disabled = !lender.can_propose;
  }

  async function decide(id, action) {
    const result = await GC.api(`/api/proposals/${id}/${action}`, {});
    if (result.ok) {
      say(action === "approve"
        ? `Published version ${result.data.config_version} for ${tenant} ` +
          `(proposed by ${result.data.proposed_by}, approved by ${result.data.approved_by}).`
        : `Proposal #${id} rejected.`, true);
      await load();
    } else {
      say(`Not ${action}d: ${result.data.error}`, false);
    }
  }

  async function loadProposals() {
    const result = await GC.api(`${api}/proposals`);
    if (!result.ok) return;
    GC.replaceChildren(document.querySelector("#proposals tbody"), result.data.proposals.map((p) => {
      const actions = GC.el("td", {});
      if (p.status === "pending" && lender.can_approve) {
        const approve = GC.el("button", {type: "button", class: "primary", "data-approve": p.id}, "Approve");
        const reject = GC.el("button", {type: "button", "data-reject": p.id}, "Reject");
        approve.addEventListener("click", () => decide(p.id, "approve"));
        reject.addEventListener("click", () => decide(p.id, "reject"));
        actions.append(approve, " ", reject);
      }
      const status = p.status === "approved" ? `approved by ${p.decided_by} → version ${p.published_version}`
        : p.status === "rejected" ? `rejected by ${p.decided_by}` : "pending";
      return GC.el("tr", {"data-proposal-id": p.id},
        GC.el("td", {}, p.id), GC.el("td", {}, p.base_version), GC.el("td", {}, p.proposed_by),
        GC.el("td", {class: "num"}, p.cr_total.toFixed(3)), GC.el("td", {}, status), actions);
    }));
  }

  function render() {
    document.title = `${tenant} · greencredit console`;
    document.getElementById("lender-title").textContent = `Lender ${tenant}`;
    document.getElementById("lender-version").textContent =
      `Configuration version ${lender.config_version} ` +
      (lender.published ? "(published)" : "(the engine's default; nothing published yet)");
    GC.replaceChildren(document.getElementById("thresholds"), Object.entries(lender.thresholds)
      .flatMap(([k, v]) => [GC.el("dt", {}, k), GC.el("dd", {}, lender.can_propose
        ? GC.el("input", {"data-threshold": k, value: v, inputmode: "decimal"}) : v)]));
    document.getElementById("lender-approvals").textContent = lender.proposed_by
      ? `Proposed by ${lender.proposed_by}, approved by ${lender.approved_by}.` : "";
    document.getElementById("propose").disabled = !lender.can_propose;
    renderNodes();
    showReport(lender.report);
    document.getElementById("lender-body").hidden = false;
  }

  async function load() {
    const result = await GC.api(api);
    if (!result.ok) {
      const box = document.getElementById("lender-error");
      box.hidden = false;
      box.textContent = result.data.error;
      return;
    }
    lender = result.data;
    render();
    await loadProposals();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("propose").addEventListener("click", propose);
    document.getElementById("reset").addEventListener("click", render);
    load();
  });
})();
