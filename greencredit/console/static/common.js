// Shared helpers of the console pages. Values are always inserted as text (textContent),
// never as HTML, so nothing from a topic can become markup or script.
"use strict";

const GC = (() => {
  const ANALYST_KEY = "greencredit.analyst_id";

  // Build an element: el("td", {class: "x"}, "text", otherNode). Strings become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // JSON API call: resolves to {ok, status, data}; network failures become status 0.
  async function api(path, body) {
    const options = body === undefined ? {} : {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body),
    };
    try {
      const response = await fetch(path, options);
      let data = null;
      try { data = await response.json(); } catch (_) { data = {error: response.statusText}; }
      return {ok: response.ok, status: response.status, data};
    } catch (err) {
      return {ok: false, status: 0, data: {error: "the console is not reachable"}};
    }
  }

  function score(value) {
    return typeof value === "number" ? value.toFixed(3) : "n/a";
  }

  function time(iso) {
    if (!iso) return "";
    return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function analystId() {
    const field = document.getElementById("analyst-id");
    return field ? field.value.trim() : "";
  }

  // The analyst id field in the page header is remembered in this browser only.
  function setupAnalystField() {
    const field = document.getElementById("analyst-id");
    if (!field) return;
    field.value = localStorage.getItem(ANALYST_KEY) || "";
    field.addEventListener("change", () => localStorage.setItem(ANALYST_KEY, field.value.trim()));
  }

  // The last path segment of the page URL (a case id or lender id), decoded.
  function pathId() {
    const parts = location.pathname.split("/").filter(Boolean);
    return decodeURIComponent(parts[parts.length - 1] || "");
  }

  function replaceChildren(node, ...children) {
    node.replaceChildren(...children.flat().map(
      (c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  }

  document.addEventListener("DOMContentLoaded", setupAnalystField);
  return {el, api, score, time, analystId, pathId, replaceChildren};
})();
