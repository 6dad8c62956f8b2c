// Fieldline console: the only script. No framework and no build step (docs/console.md).
// 1. Live regions: an element with data-live="<url>" is refreshed from that URL (an
//    HTML fragment drawn by the server) every data-every seconds, without a reload.
//    Charts are sized to the element's width, sent as ?width=, so the server never
//    sends more points than the chart has pixels.
// 2. Forms with data-confirm ask before they are sent.
// 3. A form with data-preview="<url>" posts itself there (with its CSRF token) shortly
//    after each change and shows the answer in data-preview-into: the rule preview.
// 4. Charts: the value and time of the point under the pointer, or of the focused
//    chart's point moved with the arrow keys (Home/End, PageUp/PageDown by 10), in the
//    figure's readout. The points come with the figure (data-first/-times/-values).
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
          restoreCursors(el);
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

  var cursors = {}; // field -> time of the point read, kept across live refreshes

  function chartPoints(figure) {
    if (!figure.__points) {
      var first = Number(figure.getAttribute("data-first"));
      var every = Number(figure.getAttribute("data-every"));
      var times = figure.getAttribute("data-times").split(",");
      var values = figure.getAttribute("data-values").split(",");
      figure.__points = times.map(function (t, i) { return [first + Number(t) * every, values[i]]; });
    }
    return figure.__points;
  }

  function utc(ms) {
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function showPoint(figure, index) {
    var points = chartPoints(figure);
    if (!points.length) return;
    index = Math.max(0, Math.min(points.length - 1, index));
    var point = points[index];
    cursors[figure.getAttribute("data-field")] = point[0];
    var value = point[1];
    if (figure.getAttribute("data-agg") === "last") value = value === "1" ? "on" : "off";
    var unit = figure.getAttribute("data-unit");
    var readout = figure.querySelector("[data-readout]");
    readout.textContent = value + (unit ? " " + unit : "") + " at " + utc(point[0]) +
      (figure.getAttribute("data-agg") === "mean" ? " (mean of the window)" : "");
    readout.setAttribute("data-ts", String(point[0]));
    readout.setAttribute("data-value", point[1]);
    var svg = figure.querySelector("svg.plot");
    var start = Number(figure.getAttribute("data-start"));
    var span = Math.max(1, Number(figure.getAttribute("data-stop")) - start);
    var x = String((point[0] - start) / span * Number(figure.getAttribute("data-width")));
    var line = svg.querySelector("line.cursor");
    if (!line) {
      line = document.createElementNS("http://www.w3.org/2000/svg", "line");
      line.setAttribute("class", "cursor");
      line.setAttribute("vector-effect", "non-scaling-stroke");
      line.setAttribute("y1", "0");
      line.setAttribute("y2", svg.viewBox.baseVal.height);
      svg.appendChild(line);
    }
    line.setAttribute("x1", x);
    line.setAttribute("x2", x);
  }

  function nearest(points, ts) {
    var low = 0, high = points.length - 1;
    while (low < high) {
      var middle = (low + high) >> 1;
      if (points[middle][0] < ts) low = middle + 1; else high = middle;
    }
    if (low > 0 && ts - points[low - 1][0] < points[low][0] - ts) return low - 1;
    return low;
  }

  function onPointer(event) {
    var svg = event.target.closest && event.target.closest("figure.chart svg.plot");
    if (!svg) return;
    var figure = svg.closest("figure.chart");
    var box = svg.getBoundingClientRect();
    var start = Number(figure.getAttribute("data-start"));
    var span = Number(figure.getAttribute("data-stop")) - start;
    var ts = start + (event.clientX - box.left) / Math.max(1, box.width) * span;
    showPoint(figure, nearest(chartPoints(figure), ts));
  }

  var KEYS = { ArrowLeft: -1, ArrowRight: 1, PageUp: -10, PageDown: 10 };

  function onKey(event) {
    var svg = event.target.closest && event.target.closest("figure.chart svg.plot");
    if (!svg) return;
    var figure = svg.closest("figure.chart");
    var points = chartPoints(figure);
    var count = points.length;
    var field = figure.getAttribute("data-field");
    var at = field in cursors ? nearest(points, cursors[field]) : count - 1;
    if (event.key === "Home") at = 0;
    else if (event.key === "End") at = count - 1;
    else if (event.key in KEYS) at += field in cursors ? KEYS[event.key] : 0;
    else return;
    event.preventDefault();
    showPoint(figure, at);
  }

  function restoreCursors(root) {
    Array.prototype.forEach.call(root.querySelectorAll("figure.chart:not([data-points=\"0\"])"), function (f) {
      var field = f.getAttribute("data-field");
      if (field in cursors) showPoint(f, nearest(chartPoints(f), cursors[field]));
    });
  }

  document.addEventListener("pointermove", onPointer);
  document.addEventListener("keydown", onKey);

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
