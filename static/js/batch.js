/* lhb-review: the batch page's keyboard (move, flag, reject, open, approve the rest) and giving back its claims
   when the reviewer leaves. Without this script the page is a plain form of radio buttons. */
(function () {
  "use strict";

  function cards() { return Array.prototype.slice.call(document.querySelectorAll("[data-batch-card]")); }

  function typing(target) {
    return Boolean(target && target.closest && target.closest("input, textarea, select, [contenteditable]"));
  }

  function currentIndex() {
    var all = cards();
    var active = document.activeElement && document.activeElement.closest && document.activeElement.closest("[data-batch-card]");
    var found = all.indexOf(active);
    if (found === -1) found = all.findIndex(function (c) { return c.classList.contains("is-current"); });
    return found;
  }

  function focusCard(index) {
    var all = cards();
    if (!all.length) return false;
    index = Math.min(Math.max(index, 0), all.length - 1);
    all.forEach(function (c) { c.classList.remove("is-current"); });
    all[index].classList.add("is-current");
    all[index].focus();
    all[index].scrollIntoView({ block: "nearest" });
    return true;
  }

  function columns() {
    var all = cards();
    if (!all.length) return 1;
    var top = all[0].offsetTop;
    var n = all.filter(function (c) { return c.offsetTop === top; }).length;
    return Math.max(n, 1);
  }

  function choose(card, value) {
    var input = card.querySelector("input[data-choice=" + value + "]");
    if (input) { input.checked = true; }
    show(card);
  }

  function chosen(card) {
    var input = card.querySelector("input[data-choice]:checked");
    return input ? input.value : "approve";
  }

  function show(card) {
    var value = chosen(card);
    card.classList.toggle("is-flagged", value === "flag");
    card.classList.toggle("is-rejecting", value === "reject");
    var box = card.querySelector("[data-card-reject]");
    if (box && value === "reject") box.open = true;
  }

  function move(step) {
    var here = currentIndex();
    return focusCard(here === -1 ? 0 : here + step);
  }

  function here() {
    var i = currentIndex();
    return i === -1 ? null : cards()[i];
  }

  var leaving = false;  // true when the reviewer goes on inside the batch (submit, a card's page): claims stay

  function handle(event) {
    var key = event.key;
    if (key === "Escape" && typing(event.target)) {
      var owner = event.target.closest("[data-batch-card]");
      if (owner) { event.preventDefault(); owner.focus(); return true; }
      return false;
    }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return false;
    if (document.querySelector("dialog[open]")) return false;
    var card = here();
    switch (key) {
      case "ArrowRight": case "l": return move(1);
      case "ArrowLeft": case "h": return move(-1);
      case "ArrowDown": case "j": return move(columns());
      case "ArrowUp": case "k": return move(-columns());
      case "x": case " ":
        if (!card) return false;
        choose(card, chosen(card) === "flag" ? "approve" : "flag");
        return true;
      case "r":
        if (!card) return false;
        choose(card, "reject");
        var notes = card.querySelector("[data-card-notes]");
        if (notes) notes.focus();
        return true;
      case "Enter":
        if (!card || event.target !== card) return false;
        leaving = true;
        window.location.assign(card.getAttribute("data-stage-url"));
        return true;
      case "A":
        var form = document.querySelector("[data-batch-form]");
        if (!form) return false;
        form.requestSubmit();
        return true;
      default: return false;
    }
  }

  // Capture phase, so the stage page's shortcuts (static/js/keys.js) never see the keys used here.
  document.addEventListener("keydown", function (event) {
    if (!document.querySelector("[data-batch-page]")) return;
    if (handle(event)) { event.preventDefault(); event.stopPropagation(); }
  }, true);

  document.addEventListener("change", function (event) {
    var card = event.target.closest && event.target.closest("[data-batch-card]");
    if (card && event.target.matches("input[data-choice]")) show(card);
  });

  document.addEventListener("submit", function (event) {
    if (event.target.matches && event.target.matches("[data-batch-form]")) leaving = true;
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-card-open]")) leaving = true;
  });

  document.addEventListener("DOMContentLoaded", function () {
    cards().forEach(show);
    if (cards().length && !document.querySelector("[data-batch-result]")) focusCard(0);
    else if (cards().length) cards()[0].classList.add("is-current");
  });

  window.addEventListener("pageshow", function () { leaving = false; });  // back from a card's page (bfcache)

  /* Leaving the batch (another page, closing the tab) gives back the cards not decided. */
  window.addEventListener("pagehide", function () {
    var page = document.querySelector("[data-batch-page][data-release-url]");
    var token;
    if (!page || leaving || !navigator.sendBeacon) return;
    try { token = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"]; } catch (e) { return; }
    if (!token) return;
    var form = new FormData();
    form.append("csrf_token", token);
    form.append("beacon", "1");
    navigator.sendBeacon(page.getAttribute("data-release-url"), form);
  });
})();
