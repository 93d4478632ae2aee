// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // Live status of a consent being awaited (SMS): the page names the URL to poll.
  var live = document.querySelector("[data-status-url]");
  if (live) {
    var url = live.getAttribute("data-status-url");
    var done = live.getAttribute("data-done-url");
    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (!s) { return; }
          if (s.status !== "pending_consent") { window.location.assign(done); return; }
          live.textContent = s.label;
          var notice = document.getElementById("sms-notice");
          if (notice) {
            notice.hidden = !s.sms;
            notice.firstElementChild.textContent = s.sms || "";
          }
          window.setTimeout(poll, 4000);
        })
        .catch(function () { window.setTimeout(poll, 8000); });
    };
    window.setTimeout(poll, 4000);
  }
  // Copy buttons: <button data-copy="id-of-element">.
  document.querySelectorAll("[data-copy]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      var el = document.getElementById(b.getAttribute("data-copy"));
      if (el && navigator.clipboard) {
        navigator.clipboard.writeText(el.textContent.trim()).then(function () {
          b.textContent = "Copié";
        });
      }
    });
  });
})();
