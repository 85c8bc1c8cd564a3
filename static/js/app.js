// lhb-review page behaviour shared by every page: htmx error messages, an expired sign-in, busy regions.
(function () {
  "use strict";

  // Keyboard hints and menus that need this script show only when it runs.
  document.documentElement.classList.remove("no-js");
  document.documentElement.classList.add("js");

  function showToast(message) {
    var toast = document.getElementById("toast");
    if (!toast) { return; }
    toast.textContent = message;
    toast.hidden = false;
    window.clearTimeout(showToast.timer);
    showToast.timer = window.setTimeout(function () { toast.hidden = true; }, 8000);
  }

  // The readable message of an error response: the app's error page or panel, else the HTTP status.
  function messageOf(xhr) {
    var text = "";
    try {
      var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
      var node = doc.querySelector("[data-error-message]") || doc.querySelector("main .card p");
      text = node ? node.textContent.trim() : "";
    } catch (e) { text = ""; }
    if (!text) { text = "The server answered " + xhr.status + " " + (xhr.statusText || "") + "."; }
    if (xhr.status === 400 && /CSRF/i.test(text)) { text += " Reload the page and try again."; }
    return text;
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    // A signed-out session answers an htmx request with the sign-in page: go there properly instead.
    var url = event.detail.xhr.responseURL;
    if (url && new URL(url).pathname === "/login") {
      event.detail.shouldSwap = false;
      window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname + window.location.search);
    }
  });

  // After the decision panel is swapped, put the keyboard where the reviewer needs it: the field to fix, or
  // the outcome, which a screen reader then reads.
  document.addEventListener("htmx:afterSwap", function (event) {
    var panel = document.getElementById("decision-panel");
    if (!panel || !panel.isConnected || event.detail.target.id !== "decision-panel") { return; }
    var target = panel.querySelector("[aria-invalid=true]") || panel.querySelector(".notice");
    if (target) {
      if (!target.matches("textarea, input, select, button, a")) { target.setAttribute("tabindex", "-1"); }
      target.focus();
    }
  });

  // Claim bar polls say which version of the bar they show; the server answers 304 while it is current.
  document.addEventListener("htmx:configRequest", function (event) {
    var bar = event.detail.elt;
    if (bar && bar.id === "claim-bar" && bar.hasAttribute("data-presence-version") && event.detail.verb === "get") {
      event.detail.headers["If-None-Match"] = '"' + bar.getAttribute("data-presence-version") + '"';
    }
  });

  // A decision in flight: all the panel's buttons wait (not just the one pressed), and it says "Saving…".
  function panelOf(elt) { return elt && elt.closest ? elt.closest("#decision-panel") : null; }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var panel = panelOf(event.detail.elt);
    if (!panel || event.detail.requestConfig.verb !== "post") { return; }
    panel.classList.add("is-saving");
    panel.setAttribute("aria-busy", "true");
    panel.querySelectorAll("button").forEach(function (b) { if (!b.disabled) { b.disabled = true; b.setAttribute("data-was-enabled", ""); } });
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var panel = panelOf(event.detail.elt);
    if (!panel || !panel.isConnected || !panel.classList.contains("is-saving")) { return; }
    panel.classList.remove("is-saving");
    panel.removeAttribute("aria-busy");
    panel.querySelectorAll("button[data-was-enabled]").forEach(function (b) { b.disabled = false; b.removeAttribute("data-was-enabled"); });
  });

  // Typed notes survive the panel being redrawn (a claim changed hands, someone else decided): put back into
  // the same field, or shown as "not sent" when the stage is decided now.
  var keptNotes = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "decision-panel") {
      keptNotes = {};
      event.detail.target.querySelectorAll("textarea[id]").forEach(function (t) { if (t.value.trim()) { keptNotes[t.id] = t.value; } });
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var panel = document.getElementById("decision-panel");
    if (!keptNotes || !panel || event.detail.target.id !== "decision-panel") { return; }
    var lost = [];
    Object.keys(keptNotes).forEach(function (id) {
      var field = panel.querySelector("textarea#" + id);
      if (field && !field.readOnly) { if (!field.value.trim()) { field.value = keptNotes[id]; } }
      else if (id !== "unsent-notes") { lost.push(keptNotes[id]); }
    });
    var unsent = panel.querySelector("[data-unsent-notes]");
    if (lost.length && unsent && unsent.hidden) {
      unsent.querySelector("textarea").value = lost.join("\n\n");
      unsent.hidden = false;
    }
    keptNotes = null;
  });

  document.addEventListener("htmx:responseError", function (event) {
    showToast(messageOf(event.detail.xhr));
  });

  document.addEventListener("htmx:sendError", function () {
    showToast("The server could not be reached. Check the connection and try again.");
  });

  // The narrow-screen menu button opens and closes the main navigation.
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest("[data-nav-toggle]");
    if (!toggle) { return; }
    var open = toggle.closest(".topbar").classList.toggle("nav-open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });

  // A form or button with data-confirm asks first (disabling a user, say); without this script it just sends.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); event.stopImmediatePropagation(); }
  }, true);

  document.addEventListener("click", function (event) {
    var toast = document.getElementById("toast");
    if (toast && event.target === toast) { toast.hidden = true; }
  });
}());
