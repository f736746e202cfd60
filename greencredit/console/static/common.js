// Shared helpers of the console pages. Values are always inserted as text (textContent),
// never as HTML, so nothing from a topic can become markup or script.
"use strict";

const GC = (() => {
  // The session's CSRF token, sent with every state-changing request (GET /api/session).
  let csrfToken = null;
  let sessionPromise = null;

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
  // A body makes it a POST (method overrides); those carry the CSRF token. A 401 means the
  // session ended: back to the sign-in page.
  async function api(path, body, method) {
    const options = {method: method || (body === undefined ? "GET" : "POST"), headers: {}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (options.method !== "GET") {
      if (csrfToken === null) await session();
      options.headers["X-CSRF-Token"] = csrfToken || "";
    }
    try {
      const response = await fetch(path, options);
      let data = null;
      try { data = await response.json(); } catch (_) { data = {error: response.statusText}; }
      if (response.status === 401 && location.pathname !== "/login") {
        location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      }
      return {ok: response.ok, status: response.status, data};
    } catch (err) {
      return {ok: false, status: 0, data: {error: "the console is not reachable"}};
    }
  }

  // The signed-in user ({user, csrf_token}), fetched once per page.
  function session() {
    if (sessionPromise === null) {
      sessionPromise = fetch("/api/session").then(async (response) => {
        if (!response.ok) return null;
        const data = await response.json();
        csrfToken = data.csrf_token;
        return data;
      }).catch(() => null);
    }
    return sessionPromise;
  }

  function hasRole(data, ...roles) {
    return Boolean(data && data.user.roles.some((r) => roles.includes(r)));
  }

  async function setupHeader() {
    if (location.pathname === "/login") return;
    const data = await session();
    if (!data) return;
    document.getElementById("signed-in-as").textContent =
      `${data.user.username} (${data.user.roles.join(", ")})`;
    const show = {
      cases: hasRole(data, "analyst", "supervisor"),
      lenders: hasRole(data, "policy-maker", "policy-approver"),
      audit: hasRole(data, "admin"),
    };
    for (const link of document.querySelectorAll("header a[data-nav]")) {
      link.hidden = !show[link.dataset.nav];
    }
    const button = document.getElementById("sign-out");
    button.hidden = false;
    button.addEventListener("click", async () => {
      await api("/api/session", undefined, "DELETE");
      location.assign("/login");
    });
  }

  function score(value) {
    return typeof value === "number" ? value.toFixed(3) : "n/a";
  }

  function time(iso) {
    if (!iso) return "";
    return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
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

  document.addEventListener("DOMContentLoaded", setupHeader);
  return {el, api, session, hasRole, score, time, pathId, replaceChildren};
})();
