// The vault page: a revealed secret is shown for 60 seconds, then masked; a copy button.
// Progressive enhancement: without this file the secret stays until the page is left.
(function () {
  "use strict";
  var shown = document.querySelector("[data-reveal-seconds]");
  if (!shown) { return; }
  var left = parseInt(shown.getAttribute("data-reveal-seconds"), 10) || 60;
  var countdown = shown.querySelector("[data-countdown]");
  var hide = function () {
    shown.querySelectorAll("[data-secret]").forEach(function (el) { el.textContent = "••••••"; });
    shown.querySelectorAll("[data-vault-copy]").forEach(function (b) { b.parentNode.removeChild(b); });
    var login = document.getElementById("shown-login");
    if (login) { login.textContent = "••••••"; }
    if (countdown) { countdown.textContent = "Secret masqué. Affichez-le à nouveau si besoin."; }
    shown.setAttribute("data-hidden", "true");
  };
  var tick = function () {
    left -= 1;
    if (left <= 0) { hide(); return; }
    if (countdown && left % 10 === 0) {
      countdown.textContent = "Ce secret sera masqué dans " + left + " secondes.";
    }
    window.setTimeout(tick, 1000);
  };
  window.setTimeout(tick, 1000);
  shown.querySelectorAll("[data-vault-copy]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      var el = document.getElementById(b.getAttribute("data-vault-copy"));
      if (!el || shown.getAttribute("data-hidden")) { return; }
      var text = el.textContent.trim();
      var done = function () { b.textContent = "Copié"; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () { b.textContent = "Copie impossible"; });
      } else {
        b.textContent = "Copie impossible";
      }
    });
  });
})();
