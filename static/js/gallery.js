// The review page's image gallery: a thumbnail opens the image full size in a <dialog>; arrow keys browse.
// Without this script each thumbnail is a plain link to the full-size file.
(function () {
  "use strict";

  function init() {
    var dialog = document.getElementById("lightbox");
    var items = Array.prototype.slice.call(document.querySelectorAll("[data-gallery-item]"));
    if (!dialog || !items.length || typeof dialog.showModal !== "function") { return; }
    var img = document.getElementById("lightbox-img");
    var caption = document.getElementById("lightbox-caption");
    var count = document.getElementById("lightbox-count");
    var original = document.getElementById("lightbox-open");
    var current = 0;
    var opener = null;

    function show(index) {
      current = (index + items.length) % items.length;
      var item = items[current];
      img.src = item.href;
      img.alt = item.dataset.caption || "";
      caption.textContent = item.dataset.caption || "";
      count.textContent = (current + 1) + " of " + items.length;
      original.href = item.href;
      dialog.classList.remove("zoomed");
    }

    items.forEach(function (item, index) {
      item.addEventListener("click", function (event) {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) { return; }
        event.preventDefault();
        opener = item;
        show(index);
        dialog.showModal();
      });
    });

    dialog.addEventListener("click", function (event) {
      var action = event.target.closest("[data-lightbox]");
      if (action) {
        var name = action.dataset.lightbox;
        if (name === "close") { dialog.close(); }
        if (name === "prev") { show(current - 1); }
        if (name === "next") { show(current + 1); }
        return;
      }
      if (event.target === img) { dialog.classList.toggle("zoomed"); }
      else if (event.target === dialog) { dialog.close(); }
    });

    dialog.addEventListener("keydown", function (event) {
      if (event.key === "ArrowLeft") { show(current - 1); event.preventDefault(); }
      if (event.key === "ArrowRight") { show(current + 1); event.preventDefault(); }
    });

    dialog.addEventListener("close", function () {
      img.removeAttribute("src");
      if (opener) { opener.focus(); }
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); }
  else { init(); }
}());
