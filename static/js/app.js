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
