/* Web storage for a page the browser denies it to (issue 25, docs/embed.md): the booking
 * widget shown in a frame of another website, when the browser blocks third-party storage
 * (Chromium does with third-party cookies off), throws on any use of sessionStorage and
 * localStorage, and the app (its session token, scroll restoration, colour mode) would not
 * start. Here each is replaced by an in-memory stand-in for this page's lifetime; where the
 * browser allows storage nothing changes. Loaded first in <head> (ui: rx.App head_components). */
(function () {
  "use strict";
  function memory() {
    var data = new Map();
    return {
      get length() { return data.size; },
      key: function (i) { var keys = Array.from(data.keys()); return i < keys.length ? keys[i] : null; },
      getItem: function (k) { k = String(k); return data.has(k) ? data.get(k) : null; },
      setItem: function (k, v) { data.set(String(k), String(v)); },
      removeItem: function (k) { data.delete(String(k)); },
      clear: function () { data.clear(); }
    };
  }
  ["sessionStorage", "localStorage"].forEach(function (name) {
    try {
      if (window[name]) return;
    } catch (denied) { /* replaced below */ }
    try {
      Object.defineProperty(window, name, { value: memory(), configurable: true });
    } catch (ignored) { /* nothing more to do */ }
  });
})();
