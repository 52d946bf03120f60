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
import { useEffect, useRef } from "react";

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
