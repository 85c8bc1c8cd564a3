// The review page's image inspector: a thumbnail opens the image in a <dialog>, fitted to the screen.
// 1 shows it pixel for pixel, + and - (or the wheel, or a pinch) zoom, 0 fits it again; drag or the arrow keys
// pan a zoomed image; the arrow keys (at fit) and the buttons go to the stage's next or previous image.
// Without this script each thumbnail is a plain link to the full-size file.
(function () {
  "use strict";

  var STEP = 1.25, MAX = 8, PAN = 80;

  function init() {
    var dialog = document.getElementById("lightbox");
    var items = Array.prototype.slice.call(document.querySelectorAll("[data-gallery-item]"));
    if (!dialog || !items.length || typeof dialog.showModal !== "function") { return; }
    var stage = dialog.querySelector("[data-lightbox-stage]");
    var img = document.getElementById("lightbox-img");
    var caption = document.getElementById("lightbox-caption");
    var count = document.getElementById("lightbox-count");
    var zoomLabel = document.getElementById("lightbox-zoom");
    var original = document.getElementById("lightbox-open");
    var current = 0, opener = null;
    var view = { scale: 1, x: 0, y: 0, fit: 1 };
    var pointers = new Map(), pinch = null, drag = null;

    function natural() { return { w: img.naturalWidth || 1, h: img.naturalHeight || 1 }; }
    function box() { return stage.getBoundingClientRect(); }
    function zoomed() { return view.scale > view.fit * 1.001; }

    // Keep the picture over the middle when it is smaller than the stage, and its edges inside when larger.
    function clamp() {
      var n = natural(), b = box(), w = n.w * view.scale, h = n.h * view.scale;
      view.x = w <= b.width ? (b.width - w) / 2 : Math.min(0, Math.max(b.width - w, view.x));
      view.y = h <= b.height ? (b.height - h) / 2 : Math.min(0, Math.max(b.height - h, view.y));
    }

    function draw() {
      clamp();
      img.style.transform = "translate(" + view.x + "px, " + view.y + "px) scale(" + view.scale + ")";
      dialog.classList.toggle("zoomed", zoomed());
      dialog.setAttribute("data-zoom", String(Math.round(view.scale * 100)));
      zoomLabel.textContent = Math.round(view.scale * 100) + "%" + (Math.abs(view.scale - view.fit) < 0.001 ? " · fit" : "");
    }

    // Zoom to ``scale``, keeping the point (px, py) of the stage where it is (the cursor, the pinch, the middle).
    function zoomTo(scale, px, py) {
      var b = box();
      if (px === undefined) { px = b.width / 2; py = b.height / 2; }
      scale = Math.min(MAX, Math.max(Math.min(view.fit, 1) / 2, scale));
      view.x = px - (px - view.x) * (scale / view.scale);
      view.y = py - (py - view.y) * (scale / view.scale);
      view.scale = scale;
      draw();
    }

    function fit() {
      var n = natural(), b = box();
      view.fit = Math.min(b.width / n.w, b.height / n.h);
      view.scale = view.fit;
      draw();
    }

    function show(index) {
      current = (index + items.length) % items.length;
      var item = items[current];
      view.scale = 1;
      img.style.transform = "";
      img.src = item.href;
      img.alt = item.dataset.caption || "";
      caption.textContent = item.dataset.caption || "";
      count.textContent = (current + 1) + " of " + items.length;
      original.href = item.href;
      if (img.complete && img.naturalWidth) { fit(); }
    }

    img.addEventListener("load", fit);
    // A new window size refits a fitted picture and keeps a zoomed one where it is.
    window.addEventListener("resize", function () {
      if (!dialog.open) { return; }
      var n = natural(), b = box(), wasFit = !zoomed();
      view.fit = Math.min(b.width / n.w, b.height / n.h);
      if (wasFit) { fit(); } else { draw(); }
    });

    items.forEach(function (item, index) {
      item.addEventListener("click", function (event) {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) { return; }
        event.preventDefault();
        opener = item;
        dialog.showModal();
        show(index);
      });
    });

    dialog.addEventListener("click", function (event) {
      var action = event.target.closest("[data-lightbox]");
      if (!action) {
        if (event.target === dialog) { dialog.close(); }
        return;
      }
      var name = action.dataset.lightbox;
      if (name === "close") { dialog.close(); }
      if (name === "prev") { show(current - 1); }
      if (name === "next") { show(current + 1); }
      if (name === "zoom-in") { zoomTo(view.scale * STEP); }
      if (name === "zoom-out") { zoomTo(view.scale / STEP); }
      if (name === "actual") { zoomTo(1); }
      if (name === "fit") { fit(); }
    });

    dialog.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) { return; }
      var key = event.key, handled = true;
      if (key === "+" || key === "=") { zoomTo(view.scale * STEP); }
      else if (key === "-" || key === "_") { zoomTo(view.scale / STEP); }
      else if (key === "1") { zoomTo(1); }
      else if (key === "0") { fit(); }
      else if (key.indexOf("Arrow") === 0 && zoomed()) {
        if (key === "ArrowLeft") { view.x += PAN; }
        if (key === "ArrowRight") { view.x -= PAN; }
        if (key === "ArrowUp") { view.y += PAN; }
        if (key === "ArrowDown") { view.y -= PAN; }
        draw();
      }
      else if (key === "ArrowLeft" || key === "PageUp") { show(current - 1); }
      else if (key === "ArrowRight" || key === "PageDown") { show(current + 1); }
      else { handled = false; }
      if (handled) { event.preventDefault(); }
    });

    // The wheel zooms around the cursor; a trackpad pinch arrives as a wheel with ctrlKey, in smaller steps.
    stage.addEventListener("wheel", function (event) {
      event.preventDefault();
      var b = box(), factor = Math.exp(-event.deltaY * (event.ctrlKey ? 0.01 : 0.002));
      zoomTo(view.scale * factor, event.clientX - b.left, event.clientY - b.top);
    }, { passive: false });

    // One pointer drags the picture; two pinch it (touch screens).
    stage.addEventListener("pointerdown", function (event) {
      stage.setPointerCapture(event.pointerId);
      pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      if (pointers.size === 2) {
        var p = Array.from(pointers.values());
        pinch = { distance: Math.hypot(p[0].x - p[1].x, p[0].y - p[1].y), scale: view.scale };
        drag = null;
      } else {
        drag = { x: event.clientX - view.x, y: event.clientY - view.y };
      }
      dialog.classList.add("dragging");
    });
    stage.addEventListener("pointermove", function (event) {
      if (!pointers.has(event.pointerId)) { return; }
      pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      if (pinch && pointers.size === 2) {
        var p = Array.from(pointers.values()), b = box();
        var distance = Math.hypot(p[0].x - p[1].x, p[0].y - p[1].y);
        zoomTo(pinch.scale * distance / (pinch.distance || 1), (p[0].x + p[1].x) / 2 - b.left, (p[0].y + p[1].y) / 2 - b.top);
      } else if (drag) {
        view.x = event.clientX - drag.x;
        view.y = event.clientY - drag.y;
        draw();
      }
    });
    function release(event) {
      pointers.delete(event.pointerId);
      if (pointers.size < 2) { pinch = null; }
      if (!pointers.size) { drag = null; dialog.classList.remove("dragging"); }
    }
    stage.addEventListener("pointerup", release);
    stage.addEventListener("pointercancel", release);

    dialog.addEventListener("close", function () {
      img.removeAttribute("src");
      if (opener) { opener.focus(); }
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); }
  else { init(); }
}());
