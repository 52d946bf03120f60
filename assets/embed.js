/* The booking widget's loader (issue 25; docs/embed.md). Paste next to a placeholder:
 *   <div class="booking-widget" data-service="12" data-accent="#1a73e8" data-lang="fr"></div>
 *   <script src="https://booking.example.com/embed.js" async></script>
 * (data-provider="5" instead of data-service: all of a provider's services.) For each
 * placeholder it adds an iframe of this site's /embed page and follows the height the page
 * posts ({type: "booking-widget:height", height}), taking messages only from this script's
 * own origin and from that iframe. The website must be on the provider's allow-list, or the
 * browser refuses to show the page in the frame (Content-Security-Policy: frame-ancestors). */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) return;
  var origin = new URL(script.src).origin;
  var TYPE = "booking-widget:height";
  var MAX_HEIGHT = 20000;
  var frames = [];

  function query(el) {
    var params = new URLSearchParams();
    var names = { service: "id", provider: "provider", accent: "accent", lang: "lang" };
    Object.keys(names).forEach(function (key) {
      var value = el.getAttribute("data-" + key);
      if (value) params.set(names[key], value);
    });
    return params.toString();
  }

  function mount(el) {
    if (el.getAttribute("data-booking-mounted")) return;
    el.setAttribute("data-booking-mounted", "1");
    var frame = document.createElement("iframe");
    frame.src = origin + "/embed?" + query(el);
    frame.title = el.getAttribute("data-title") || "Booking";
    frame.setAttribute("loading", "lazy");
    frame.style.cssText = "display:block;width:100%;height:" + (el.getAttribute("data-height") || "600") + "px;border:0;";
    el.appendChild(frame);
    frames.push(frame);
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== origin) return;
    var data = event.data;
    if (!data || data.type !== TYPE || typeof data.height !== "number") return;
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].contentWindow === event.source) {
        var height = Math.max(100, Math.min(MAX_HEIGHT, Math.ceil(data.height)));
        frames[i].style.height = height + "px";
      }
    }
  });

  function scan() {
    var found = document.querySelectorAll(".booking-widget, [data-booking-widget]");
    for (var i = 0; i < found.length; i++) mount(found[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
