/* lhb-review: keyboard shortcuts and the few behaviours the review pages need.
   Loaded from static/ (no inline scripts, so a Content-Security-Policy of 'self' holds). */
(function () {
  "use strict";

  var SHORTCUTS = {
    a: approve, A: approveNext, r: reject, j: nextItem, k: previousItem, n: nextWaiting, u: undoDecision, c: claim, t: toggleCompare,
    "?": showHelp
  };

  function typing(target) {
    if (!target || !target.closest) return false;
    return Boolean(target.isContentEditable || target.closest("input, textarea, select, [contenteditable]"));
  }

  function visible(el) {
    return el && !el.disabled && el.getClientRects().length > 0;
  }

  function press(selector) {
    var el = document.querySelector(selector);
    if (visible(el)) { el.click(); return true; }
    return false;
  }

  function follow(selector) {
    var link = document.querySelector(selector);
    if (link && link.href) { window.location.assign(link.href); return true; }
    return false;
  }

  function approve() { return press("[data-key=approve]"); }
  function approveNext() { return press("[data-key=approve-next]"); }

  function reject() {
    var box = document.querySelector("details[data-key=reject]");
    if (box && !box.open) box.open = true;
    var notes = document.querySelector("[data-key=reject-notes]");
    if (notes && !notes.disabled) { notes.focus(); return true; }
    return false;
  }

  function undoDecision() { return press("[data-key=undo]"); }
  function claim() { return press("[data-key=claim]"); }
  function nextWaiting() { return follow("a[data-key=next-waiting]"); }

  function toggleCompare() {
    var modes = document.querySelectorAll("[data-compare] input[name=compare-mode]");
    if (!modes.length) return false;
    var other = Array.prototype.find.call(modes, function (input) { return !input.checked; });
    other.checked = true;
    other.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  /* j / k: move through the queue's rows; on a stage page, to the queue's next or previous item. */
  function queueRows() { return Array.prototype.slice.call(document.querySelectorAll("[data-queue-row]")); }

  function moveInQueue(step) {
    var rows = queueRows();
    if (!rows.length) return false;
    var current = rows.findIndex(function (row) { return row.classList.contains("is-current"); });
    var next = Math.min(Math.max(current + step, 0), rows.length - 1);
    if (current === -1) next = step > 0 ? 0 : rows.length - 1;
    rows.forEach(function (row) { row.classList.remove("is-current"); row.removeAttribute("aria-current"); });
    var row = rows[next];
    row.classList.add("is-current");
    row.setAttribute("aria-current", "true");
    var link = row.querySelector("a[data-row-link]") || row.querySelector("a");
    if (link) link.focus();
    row.scrollIntoView({ block: "nearest" });
    return true;
  }

  function nextItem() { return moveInQueue(1) || follow("a[data-key=next-waiting]"); }
  function previousItem() { return moveInQueue(-1) || follow("a[data-key=prev-item]"); }

  function showHelp() {
    var dialog = document.getElementById("shortcuts");
    if (!dialog || dialog.open) return false;
    dialog.showModal();
    return true;
  }

  /* Ctrl+Enter (Cmd+Enter) in a form's field sends that form: the reject notes, say. */
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || !typing(event.target)) return;
    var form = event.target.form;
    if (form && !event.target.disabled) { event.preventDefault(); form.requestSubmit(); }
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (typing(event.target)) {
      if (event.key === "Escape" && !event.target.closest("dialog")) event.target.blur();
      return;
    }
    if (event.shiftKey && event.key !== "A" && event.key !== "?") return;
    if (document.querySelector("dialog[open]") && event.key !== "Escape") return;
    var action = SHORTCUTS[event.key];
    if (action && action()) event.preventDefault();
  });

  /* Enter on a queue row opens it. */
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || typing(event.target)) return;
    var row = event.target.closest && event.target.closest("[data-queue-row]");
    var link = row && row.querySelector("a[data-row-link]");
    if (link && event.target !== link) { link.click(); event.preventDefault(); }
  });

  document.addEventListener("click", function (event) {
    var closer = event.target.closest && event.target.closest("[data-close-dialog]");
    if (closer) { closer.closest("dialog").close(); }
    if (event.target.closest && event.target.closest("[data-show-shortcuts]")) { showHelp(); }
  });

  /* Compare: the slider reveals the current asset over the previous one. */
  document.addEventListener("input", function (event) {
    var slider = event.target;
    if (!slider.matches || !slider.matches("[data-compare-slider]")) return;
    var frame = slider.closest("[data-compare]");
    var stack = frame && frame.querySelector("[data-compare-stack]");
    if (stack) stack.style.setProperty("--reveal", slider.value + "%");
  });

  /* Compare: which previous asset sits beside / under the current one. */
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-autosubmit]") && target.form) {
      target.form.requestSubmit();
    }
    var which = target.matches && (target.matches("[data-compare-pick]") ? "[data-compare-previous]" :
      target.matches("[data-compare-pick-current]") ? "[data-compare-current]" : null);
    if (which) {
      var frame = target.closest("[data-compare]");
      var option = target.options[target.selectedIndex];
      frame.querySelectorAll(which).forEach(function (img) {
        img.src = option.value;
        img.alt = option.textContent.trim();
      });
    }
  });

  /* Undo: count the window down, then take the button away. */
  function tickUndo() {
    document.querySelectorAll("[data-undo-deadline]").forEach(function (box) {
      var left = Math.round((Number(box.getAttribute("data-undo-deadline")) - Date.now()) / 1000);
      var label = box.querySelector("[data-undo-left]");
      if (left > 0) {
        if (label) label.textContent = left >= 60 ? Math.floor(left / 60) + " min " + (left % 60) + " s" : left + " s";
      } else {
        box.hidden = true;
      }
    });
  }

  function startUndo(root) {
    (root || document).querySelectorAll("[data-undo-seconds]").forEach(function (box) {
      if (box.hasAttribute("data-undo-deadline")) return;
      box.setAttribute("data-undo-deadline", String(Date.now() + Number(box.getAttribute("data-undo-seconds")) * 1000));
    });
    tickUndo();
  }

  setInterval(tickUndo, 1000);
  document.addEventListener("DOMContentLoaded", function () { startUndo(document); });
  document.addEventListener("htmx:load", function (event) { startUndo(event.target); });

  /* Leaving a stage page gives back a claim the reviewer still holds, so nobody waits on an empty desk. */
  window.addEventListener("pagehide", function () {
    var bar = document.querySelector("#claim-bar[data-claim-state=mine][data-release-url]");
    var token;
    try { token = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"]; } catch (e) { return; }
    if (!bar || !token || !navigator.sendBeacon) return;
    var form = new FormData();
    form.append("csrf_token", token);
    form.append("beacon", "1");
    navigator.sendBeacon(bar.getAttribute("data-release-url"), form);
  });
})();
