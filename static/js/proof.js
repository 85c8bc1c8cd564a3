/* lhb-review: turning the pages of the print proof with the keyboard.
   → / PageDown / Space: next spread; ← / PageUp / Shift+Space: previous; Home / End: cover / last spread.
   A link to #page-N (a failing check's) opens that page's spread. Loaded from static/ for the CSP. */
(function () {
  "use strict";

  function spreads() { return Array.prototype.slice.call(document.querySelectorAll("[data-spread]")); }

  function typing(target) {
    return Boolean(target && target.closest && target.closest("input, textarea, select, [contenteditable]"));
  }

  function current() {
    var all = spreads();
    var marked = all.findIndex(function (s) { return s.classList.contains("is-current"); });
    return marked === -1 ? 0 : marked;
  }

  function show(index, focusPage, still) {
    var all = spreads();
    if (!all.length) return;
    index = Math.min(Math.max(index, 0), all.length - 1);
    all.forEach(function (s) { s.classList.remove("is-current"); s.removeAttribute("aria-current"); });
    var spread = all[index];
    spread.classList.add("is-current");
    spread.setAttribute("aria-current", "true");
    var first = focusPage || spread.querySelector("[data-page]");
    if (still) return;
    if (first && window.history.replaceState) window.history.replaceState(null, "", "#" + first.id);
    spread.scrollIntoView({ block: "start" });
  }

  function fromHash() {
    var id = window.location.hash.slice(1);
    var target = id ? document.getElementById(id) : null;
    document.querySelectorAll(".proof-page.is-target").forEach(function (p) { p.classList.remove("is-target"); });
    if (!target) { show(0, null, true); return; }
    var spread = target.closest("[data-spread]");
    if (!spread) return;
    if (target.matches("[data-page]")) target.classList.add("is-target");
    show(spreads().indexOf(spread), target.matches("[data-page]") ? target : null);
  }

  document.addEventListener("keydown", function (event) {
    if (!spreads().length || typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (document.querySelector("dialog[open]")) return;
    var step = { ArrowRight: 1, PageDown: 1, ArrowLeft: -1, PageUp: -1 }[event.key];
    if (event.key === " ") step = event.shiftKey ? -1 : 1;
    if (event.key === "Home") { event.preventDefault(); show(0); return; }
    if (event.key === "End") { event.preventDefault(); show(spreads().length - 1); return; }
    if (!step) return;
    event.preventDefault();
    show(current() + step);
  });

  window.addEventListener("hashchange", fromHash);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fromHash);
  else fromHash();
})();
