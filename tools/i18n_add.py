"""Add or update messages in every catalog at once (the template and each language's .po).

Usage: python tools/i18n_add.py FILE.json
FILE.json maps each English msgid to its translations:
    {"Too many attempts. Try again later.": {"es": "…", "fr": "…", "de": "…", "ar": "…"}}
A plural message is keyed by its singular and carries "plural" plus a list per language:
    {"{count} seat": {"plural": "{count} seats", "es": ["{count} plaza", "{count} plazas", "…"], …}}
Every shipped language must be given. The files are rewritten in Babel's sorted layout, under
a lock, so several people (or scripts) may add messages at the same time.
"""
from __future__ import annotations

import fcntl
import json
import pathlib
import sys

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = pathlib.Path(__file__).resolve().parent.parent
I18N = ROOT / "booking_app" / "i18n"
POT = I18N / "messages.pot"


def _languages() -> list[str]:
    return sorted(p.name for p in (I18N / "locales").iterdir() if (p / "LC_MESSAGES" / "messages.po").exists())


def _load(path: pathlib.Path, locale: str | None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def _save(catalog: Catalog, path: pathlib.Path, *, omit_header: bool = False) -> None:
    with path.open("wb") as fh:
        write_po(fh, catalog, sort_output=True, omit_header=omit_header, width=76, include_lineno=False)


def _flags(msgid: str) -> set[str]:
    return {"python-brace-format"} if "{" in msgid else set()


def add(entries: dict[str, dict]) -> None:
    langs = _languages()
    shipped = [lang for lang in langs if lang != "en"]
    for msgid, tr in entries.items():
        missing = [lang for lang in shipped if not tr.get(lang)]
        if missing:
            raise SystemExit(f"{msgid!r}: no translation for {', '.join(missing)}")
    pot = _load(POT, None)
    for msgid, tr in entries.items():
        key = (msgid, tr["plural"]) if "plural" in tr else msgid
        pot.add(key, "", flags=_flags(msgid))
    _save(pot, POT, omit_header=True)
    for lang in langs:
        path = I18N / "locales" / lang / "LC_MESSAGES" / "messages.po"
        cat = _load(path, lang)
        for msgid, tr in entries.items():
            key = (msgid, tr["plural"]) if "plural" in tr else msgid
            if lang == "en":
                string = ("", "") if "plural" in tr else ""
            else:
                string = tuple(tr[lang]) if "plural" in tr else tr[lang]
            if msgid in cat:
                del cat[msgid]
            cat.add(key, string, flags=_flags(msgid))
        _save(cat, path)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    entries = json.loads(pathlib.Path(argv[1]).read_text(encoding="utf-8"))
    with (I18N / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        add(entries)
    print(f"{len(entries)} message(s) added to {POT.name} and {len(_languages())} catalogs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
