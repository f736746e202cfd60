// A lender's AHP judgements: edit the upper triangle, see CR recomputed by the server
// (models/ahp.py) as you type, publish a consistent set as the next config version.
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

  async function publish() {
    const box = document.getElementById("publish-result");
    const button = document.getElementById("publish");
    button.disabled = true;
    const result = await GC.api(`${api}/config`, {base_version: lender.config_version, matrices: matrices()});
    box.hidden = false;
    if (result.ok) {
      box.className = "message ok";
      box.textContent = `Published version ${result.data.config_version} for ${tenant}.`;
      await load();
    } else {
      box.className = "message bad";
      box.textContent = `Refused: ${result.data.error}`;
    }
    button.disabled = false;
  }

  function render() {
    document.title = `${tenant} · greencredit console`;
    document.getElementById("lender-title").textContent = `Lender ${tenant}`;
    document.getElementById("lender-version").textContent =
      `Configuration version ${lender.config_version} ` +
      (lender.published ? "(published)" : "(the engine's default; nothing published yet)");
    GC.replaceChildren(document.getElementById("thresholds"), Object.entries(lender.thresholds)
      .flatMap(([k, v]) => [GC.el("dt", {}, k), GC.el("dd", {}, v)]));
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
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("publish").addEventListener("click", publish);
    document.getElementById("reset").addEventListener("click", render);
    load();
  });
})();
