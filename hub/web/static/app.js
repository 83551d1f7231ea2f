// Thân Thiện UI: live fragments by server-sent events, and confirmations. No build step.
(function () {
  "use strict";

  function live() {
    var regions = document.querySelectorAll("[data-live]");
    if (!regions.length || !window.EventSource) { return; }
    var names = Array.prototype.map.call(regions, function (el) { return el.getAttribute("data-live"); });
    var asked = Array.prototype.map.call(regions, function (el) {
      return el.getAttribute("data-live") + ":" + (el.getAttribute("data-mark") || "");
    });
    var status = document.getElementById("live-status");
    // The marks say what the page already shows: only later changes are sent.
    var source = new EventSource("/ui/events?topics=" + encodeURIComponent(asked.join(",")));
    names.forEach(function (name) {
      source.addEventListener(name, function (event) {
        document.querySelectorAll('[data-live="' + name + '"]').forEach(function (el) {
          el.innerHTML = event.data;
        });
        document.body.setAttribute("data-live-updates",
          String(Number(document.body.getAttribute("data-live-updates") || 0) + 1));
      });
    });
    source.onopen = function () {
      document.body.setAttribute("data-live-open", "1");
      status.hidden = false;
      status.className = "live-status on";
      status.textContent = "● Đang cập nhật trực tiếp";
    };
    source.onerror = function () {
      status.hidden = false;
      status.className = "live-status off";
      status.textContent = "● Mất kết nối cập nhật, đang thử lại…";
    };
  }

  function confirmations() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var question = form.getAttribute && form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) { event.preventDefault(); }
    });
  }

  // Listen-through: a rendered (TTS) file played to its end is reported to the hub, which checks
  // that it served the file at least that long ago; the page then shows it and allows approval.
  function listenThrough() {
    document.querySelectorAll("audio[data-listen]").forEach(function (audio) {
      audio.addEventListener("ended", function () {
        var body = new URLSearchParams();
        body.set("csrf", audio.getAttribute("data-csrf"));
        fetch(audio.getAttribute("data-listen"), { method: "POST", body: body, credentials: "same-origin" })
          .then(function () { window.location.reload(); });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { live(); confirmations(); listenThrough(); });
})();
