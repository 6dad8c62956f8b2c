// Fieldline console: the only script. No framework and no build step (docs/console.md).
// 1. Live regions: an element with data-live="<url>" is refreshed from that URL (an
//    HTML fragment drawn by the server) every data-every seconds, without a reload.
//    Charts are sized to the element's width, sent as ?width=, so the server never
//    sends more points than the chart has pixels.
// 2. Forms with data-confirm ask before they are sent.
// 3. A form with data-preview="<url>" posts itself there (with its CSRF token) shortly
//    after each change and shows the answer in data-preview-into: the rule preview.
(function () {
  "use strict";

  function withWidth(url, el) {
    if (!el.hasAttribute("data-width-from")) return url;
    // The drawing's own width (not its box's, which has padding): points <= pixels.
    var probe = el.querySelector(el.getAttribute("data-width-from")) || el;
    var width = Math.max(60, Math.floor(probe.clientWidth || 360));
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "width=" + width;
  }

  function refresh(el) {
    if (document.hidden) return Promise.resolve();
    var url = withWidth(el.getAttribute("data-live"), el);
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.redirected && response.url.indexOf("/login") >= 0) {
          window.location.assign(response.url); // the session ended: sign in again
          return;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text().then(function (html) {
          // Keep keyboard focus where it was when the focused element is replaced.
          var focusedId = document.activeElement && document.activeElement.id;
          el.innerHTML = html;
          el.setAttribute("data-updated", String(Date.now()));
          el.removeAttribute("data-stale");
          if (focusedId) {
            var again = document.getElementById(focusedId);
            if (again) again.focus();
          }
        });
      })
      .catch(function () {
        el.setAttribute("data-stale", "true"); // shown by the style sheet; retried next time
      });
  }

  function start(el) {
    var every = Math.max(1, parseFloat(el.getAttribute("data-every") || "5")) * 1000;
    var busy = false;
    function tick() {
      if (busy) return;
      busy = true;
      refresh(el).then(function () { busy = false; }, function () { busy = false; });
    }
    if (el.hasAttribute("data-width-from")) tick(); // redraw at the real width at once
    window.setInterval(tick, every);
  }

  function livePreview(form) {
    var target = document.querySelector(form.getAttribute("data-preview-into"));
    var timer = null;
    var asked = 0;
    function ask() {
      var mine = ++asked;
      fetch(form.getAttribute("data-preview"), {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html !== null && mine === asked) target.innerHTML = html; // only the newest
        })
        .catch(function () { /* the button still works */ });
    }
    function changed() {
      window.clearTimeout(timer);
      timer = window.setTimeout(ask, 700);
    }
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-preview]"), livePreview);
    Array.prototype.forEach.call(document.querySelectorAll("[data-live]"), start);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  });
})();
