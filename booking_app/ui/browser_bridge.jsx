// The page's hands in the browser outside React's tree, driven by state instead of scripts
// sent from the server: the Content-Security-Policy has no 'unsafe-eval', so Reflex's
// call_script (which evals a string) cannot run. Bundled with the app, loaded from 'self'.
//  - pageLang / pageDir / pageTitle: kept on <html lang dir> and in the tab's title
//  - onTimezone(tz): the browser's IANA time zone, once per mount
//  - command {id, kind, ...}: run once per id (remembered in sessionStorage, so a page that
//    hydrates the same state again doesn't repeat it); onCommandDone(id, false) on failure
//      hand_off    POST {code} to url (same origin: its Set-Cookie is stored), then load next
//      end_session DELETE url (the server clears the cookie), then load next
//      scroll_to   bring the element with id `target` into view
//  - after a client-side page change: focus moves to the page's <h1> (tabindex=-1) and its
//    text is announced in the shell's live region (#route-announcer), unless the new page
//    already put focus somewhere in its content
//  - section tabs (staff pages, data-testid=section-tabs): the current page's tab is
//    scrolled into view inside its strip (on a phone the strip is wider than the screen)
//  - roving tabindex: a strip of buttons marked data-roving (the booking page's day chips)
//    is one Tab stop; the arrow keys, Home and End move between its enabled buttons
//  - focus trap: while an element marked data-focus-trap="<opener id>" is shown (the phone
//    menu), Tab and Shift+Tab cycle through the opener and the element's controls; Esc clicks
//    the opener (which closes it) and leaves the focus on the opener
//  - dialogs without a trigger (opened by state, e.g. "confirm it is you"): Radix gives focus
//    back only to a dialog's own trigger, so the element focused before a dialog opened is
//    remembered and focused again when the last dialog closes and the focus was left nowhere
import { useEffect, useRef } from "react";

const ROVING = "[data-roving], [data-testid=day-strip]"; // the day strip until it carries data-roving
let lastPath = null; // the page this window showed last (module state outlives page components)

function focusHeading() {
  let tries = 0;
  const attempt = () => {
    const ready = document.querySelector("[data-testid=app-root][data-ready=true]");
    const heading = document.querySelector("main h1");
    if (!ready || !heading) {
      if (++tries < 40) setTimeout(attempt, 100);
      return;
    }
    const active = document.activeElement;
    const main = document.querySelector("main");
    if (active && active !== document.body && main && main.contains(active)) return; // the page chose
    if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
    heading.focus();
    const announcer = document.getElementById("route-announcer");
    if (announcer) announcer.textContent = heading.textContent || document.title;
  };
  setTimeout(attempt, 50);
}

function showCurrentTab() {
  let tries = 0;
  const attempt = () => {
    const strips = document.querySelectorAll("[data-testid=section-tabs]");
    if (!strips.length) {
      if (++tries < 40) setTimeout(attempt, 100);
      return;
    }
    strips.forEach((strip) => {
      const tab = strip.querySelector("[aria-current=page]");
      if (!tab || strip.scrollWidth <= strip.clientWidth) return;
      const s = strip.getBoundingClientRect();
      const r = tab.getBoundingClientRect();
      if (r.left >= s.left && r.right <= s.right) return;
      strip.scrollBy({ left: r.left - s.left - (s.width - r.width) / 2 }); // centred (also right to left)
    });
  };
  setTimeout(attempt, 50);
}

function rovingItems(strip) {
  return Array.from(strip.querySelectorAll("button")).filter((b) => !b.disabled);
}

function arrangeRoving() {
  document.querySelectorAll(ROVING).forEach((strip) => {
    const items = rovingItems(strip);
    if (!items.length) return;
    const active = items.find((b) => b === document.activeElement) ||
      items.find((b) => b.getAttribute("aria-pressed") === "true") || items[0];
    strip.querySelectorAll("button").forEach((b) => b.setAttribute("tabindex", b === active ? "0" : "-1"));
  });
}

function onRovingKey(event) {
  const strip = event.target.closest && event.target.closest(ROVING);
  if (!strip) return;
  const items = rovingItems(strip);
  const index = items.indexOf(event.target);
  if (index < 0) return;
  const rtl = getComputedStyle(strip).direction === "rtl";
  const step = { ArrowRight: rtl ? -1 : 1, ArrowLeft: rtl ? 1 : -1, ArrowDown: 1, ArrowUp: -1 }[event.key];
  let next = null;
  if (step) next = items[(index + step + items.length) % items.length];
  else if (event.key === "Home") next = items[0];
  else if (event.key === "End") next = items[items.length - 1];
  if (!next) return;
  event.preventDefault();
  items.forEach((b) => b.setAttribute("tabindex", b === next ? "0" : "-1"));
  next.focus();
  next.scrollIntoView({ block: "nearest", inline: "nearest" });
}

const FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), " +
  "textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

function onTrapKey(event) {
  if (event.key !== "Tab" && event.key !== "Escape") return;
  const trap = Array.from(document.querySelectorAll("[data-focus-trap]")).find((t) => t.offsetParent !== null);
  if (!trap) return;
  const opener = document.getElementById(trap.getAttribute("data-focus-trap"));
  if (event.key === "Escape") {
    event.preventDefault();
    if (opener) {
      opener.click();
      opener.focus();
    }
    return;
  }
  const items = [opener, ...trap.querySelectorAll(FOCUSABLE)].filter((el) => el && el.offsetParent !== null);
  if (!items.length) return;
  const index = items.indexOf(document.activeElement);
  const step = event.shiftKey ? -1 : 1;
  event.preventDefault();
  items[index < 0 ? 0 : (index + step + items.length) % items.length].focus();
}

const DIALOG = "[role=dialog], [role=alertdialog]";
let focusedOutside = null; // the last element focused outside any dialog
let dialogOpener = null; // what had the focus when the open dialog(s) appeared

function onFocusIn(event) {
  const target = event.target;
  if (target && target.closest && !target.closest(DIALOG) && target !== document.body) focusedOutside = target;
}

function watchDialogs() {
  const open = document.querySelector(DIALOG) !== null;
  if (open && dialogOpener === null) {
    // the dialog may already hold the focus: then the element focused before it is the opener
    const active = document.activeElement;
    dialogOpener = active && active !== document.body && !(active.closest && active.closest(DIALOG))
      ? active : focusedOutside;
    if (!dialogOpener) dialogOpener = document.body;
  } else if (!open && dialogOpener !== null) {
    const opener = dialogOpener;
    dialogOpener = null;
    setTimeout(() => { // after Radix has given focus to a trigger, if the dialog had one
      if (document.querySelector(DIALOG)) return;
      const active = document.activeElement;
      if (active && active !== document.body && active.isConnected) return;
      if (opener !== document.body && opener.isConnected) opener.focus();
    }, 0);
  }
}

let rovingStarted = false;
function startRoving() {
  if (rovingStarted) return;
  rovingStarted = true;
  document.addEventListener("keydown", onRovingKey);
  document.addEventListener("keydown", onTrapKey);
  document.addEventListener("focusin", onFocusIn, true);
  let queued = false;
  new MutationObserver(() => {
    watchDialogs(); // at once: before the dialog moves the focus into itself
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      arrangeRoving();
    });
  }).observe(document.body, { childList: true, subtree: true, attributes: true,
    attributeFilter: ["aria-pressed", "disabled"] });
  arrangeRoving();
}

const DONE_KEY = "booking.browserCommands";

function seen(id) {
  try {
    return (sessionStorage.getItem(DONE_KEY) || "").split(",").includes(id);
  } catch (e) {
    return false;
  }
}

function remember(id) {
  try {
    const ids = (sessionStorage.getItem(DONE_KEY) || "").split(",").filter(Boolean).slice(-19);
    ids.push(id);
    sessionStorage.setItem(DONE_KEY, ids.join(","));
  } catch (e) {
    // private mode without storage: the id is still in this page's memory
  }
}

async function run(command) {
  if (command.kind === "hand_off") {
    try {
      const response = await fetch(command.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ code: command.code }),
      });
      if (!response.ok) return false;
    } catch (e) {
      return false;
    }
    window.location.assign(command.next);
    return true;
  }
  if (command.kind === "end_session") {
    try {
      await fetch(command.url, { method: "DELETE", credentials: "same-origin" });
    } catch (e) {
      // the token is already revoked on the server; the cookie goes with the next answer
    }
    window.location.assign(command.next);
    return true;
  }
  if (command.kind === "scroll_to") {
    const element = document.getElementById(command.target);
    if (element) element.scrollIntoView();
    return true;
  }
  return false;
}

export function BrowserBridge({ pageLang, pageDir, pageTitle, command, onTimezone, onCommandDone }) {
  useEffect(() => {
    const root = document.documentElement;
    if (pageLang) root.lang = pageLang;
    if (pageDir) root.dir = pageDir;
    if (pageTitle) document.title = pageTitle;
  }, [pageLang, pageDir, pageTitle]);

  useEffect(() => {
    startRoving();
  }, []);

  useEffect(() => {
    const path = window.location.pathname;
    if (lastPath !== null && lastPath !== path) focusHeading();
    if (lastPath !== path) showCurrentTab();
    lastPath = path;
  }, [pageTitle]);

  const tzSent = useRef(false);
  useEffect(() => {
    if (tzSent.current || !onTimezone) return;
    tzSent.current = true;
    let tz = "";
    try {
      tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      return;
    }
    if (tz) onTimezone(tz);
  }, [onTimezone]);

  const started = useRef(new Set());
  const id = command && command.id;
  useEffect(() => {
    if (!id || started.current.has(id) || seen(id)) return;
    started.current.add(id);
    remember(id);
    run(command).then((ok) => {
      if (!ok && onCommandDone) onCommandDone(id, false);
    });
  }, [id]);

  return null;
}
