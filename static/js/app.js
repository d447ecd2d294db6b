// Portal behaviour kept tiny: htmx settings, copy buttons, confirmation already via hx-confirm.
(function () {
  "use strict";
  if (window.htmx) {
    // Swap 422 (form errors) like a success so the re-rendered form appears; other errors raise events.
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "422", swap: true },
      { code: "[45]..", swap: false, error: true },
    ];
    document.body.addEventListener("htmx:responseError", function (event) {
      var box = document.getElementById("htmx-error");
      if (!box) return;
      var text = "Request failed (" + event.detail.xhr.status + ")";
      try {
        var body = JSON.parse(event.detail.xhr.responseText);
        if (body && body.error) text = body.error;
      } catch (e) {
        var doc = new DOMParser().parseFromString(event.detail.xhr.responseText, "text/html");
        var msg = doc.querySelector("[data-error-message]");
        if (msg) text = msg.textContent.trim();
      }
      box.textContent = text;
      box.hidden = false;
    });
    document.body.addEventListener("htmx:sendError", function () {
      var box = document.getElementById("htmx-error");
      if (box) { box.textContent = "The portal did not answer. Is it running?"; box.hidden = false; }
    });
  }
  // Widths and positions come from data attributes: the Content-Security-Policy forbids inline style attributes,
  // but styles set through the DOM are allowed.
  function percentOf(el, name) {
    return Math.max(0, Math.min(100, parseFloat(el.getAttribute(name)) || 0)) + "%";
  }
  function applyGeometry(root) {
    var scope = root.parentNode || root; // the swapped-in element itself may carry the attribute
    scope.querySelectorAll("[data-percent]").forEach(function (el) { el.style.width = percentOf(el, "data-percent"); });
    scope.querySelectorAll("[data-position]").forEach(function (el) { el.style.left = percentOf(el, "data-position"); });
  }
  if (window.htmx) {
    htmx.onLoad(applyGeometry); // the first page and every swapped-in partial
  } else {
    applyGeometry(document);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.innerText || source.value || "";
    var done = function () {
      var old = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = old; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var area = document.createElement("textarea");
      area.value = text; document.body.appendChild(area); area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* clipboard unavailable */ }
      document.body.removeChild(area);
    }
  });
})();
