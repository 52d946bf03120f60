// Copies `text` to the clipboard when anything inside is clicked (the snippet's Copy button).
// Bundled with the app: Reflex's set_clipboard would send code for the page to eval, which the
// Content-Security-Policy forbids.
export function CopyOnClick({ text, children }) {
  const copy = () => {
    if (text && navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
  };
  return <span onClick={copy} style={{ display: "contents" }}>{children}</span>;
}
