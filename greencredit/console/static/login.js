// Sign-in: the session cookie is set by the server (httponly); then on to the page asked for.
"use strict";

(() => {
  function next() {
    const target = new URLSearchParams(location.search).get("next") || "/";
    // Only a path on this console, never another site.
    return target.startsWith("/") && !target.startsWith("//") ? target : "/";
  }

  async function signIn(event) {
    event.preventDefault();
    const box = document.getElementById("login-error");
    box.hidden = true;
    const response = await fetch("/api/session", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({
        username: document.getElementById("login-username").value,
        password: document.getElementById("login-password").value,
      }),
    });
    if (response.ok) {
      location.assign(next());
      return;
    }
    let error = response.statusText;
    try { error = (await response.json()).error; } catch (_) { /* keep the status text */ }
    box.textContent = `Not signed in: ${error}`;
    box.hidden = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("login-form").addEventListener("submit", signIn);
  });
})();
