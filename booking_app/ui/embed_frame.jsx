// The booking widget's side of the resize protocol (issue 25, docs/embed.md): while the page
// is shown in a frame, post its height to the parent whenever it changes, as
//   {type: "booking-widget:height", height: <px>}
// The loader (assets/embed.js) checks that the message comes from this site's origin and from
// its own frame. The height is not secret, but the message goes only to the frame's parent's
// origin (location.ancestorOrigins) where the browser tells it.
import { useEffect } from "react";

const TYPE = "booking-widget:height";

function parentOrigin() {
  const ancestors = window.location.ancestorOrigins;
  return ancestors && ancestors.length ? ancestors[0] : "*";
}

export function EmbedFrame() {
  useEffect(() => {
    if (window.parent === window) return undefined;
    let last = -1;
    // the widget's own root, not <html>: the theme's root is at least as tall as the frame
    // (min-height: 100vh), which would let the frame grow but never shrink
    const root = () => document.getElementById("embed-root") || document.body;
    const post = () => {
      const height = Math.ceil(root().getBoundingClientRect().height);
      if (height === last) return;
      last = height;
      window.parent.postMessage({ type: TYPE, height }, parentOrigin());
    };
    const observer = new ResizeObserver(post);
    observer.observe(document.body);
    const watched = root();
    if (watched !== document.body) observer.observe(watched);
    post();
    return () => observer.disconnect();
  }, []);
  return null;
}
