"""Add or update messages in every catalog at once (the template and each language's .po),
or write one language's whole catalog.

Usage:
    python tools/i18n_add.py FILE.json
    python tools/i18n_add.py --language LANG FILE.json

FILE.json (first form) maps each English msgid to its translations:
    {"Too many attempts. Try again later.": {"es": "…", "fr": "…", "de": "…", "ar": "…", …}}
A plural message is keyed by its singular and carries "plural" plus a list per language with
as many forms as the language has (its catalog's Plural-Forms: ar 6; es, fr, it, pl, pt_BR 3;
de, nl, tr 2):
    {"{count} seat": {"plural": "{count} seats", "es": ["{count} plaza", "…", "…"], …}}
Every shipped language (each folder under booking_app/i18n/locales) must be given; the tool
names the missing ones and adds nothing until all are there.

The second form writes the catalog of LANG (a new language, or one catching up) from the
template messages.pot. FILE.json maps msgids to that language's text only:
    {"Sign in": "Accedi", "{count} seat": ["{count} posto", "{count} posti", "{count} posti"]}
Every msgid of the template needs a translation, from FILE.json or already in LANG's catalog;
Babel writes the header (Plural-Forms from CLDR). See docs/i18n.md.

The files are rewritten in Babel's sorted layout, under a lock, so several people (or
scripts) may add messages at the same time.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import pathlib
import re
import sys

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = pathlib.Path(__file__).resolve().parent.parent
I18N = ROOT / "booking_app" / "i18n"
POT = I18N / "messages.pot"
PLACEHOLDER = re.compile(r"\{[a-zA-Z_][a-zA-Z0-9_]*\}")


def languages() -> list[str]:
    """Every language with a catalog (English included)."""
    return sorted(p.name for p in (I18N / "locales").iterdir() if (p / "LC_MESSAGES" / "messages.po").exists())


def language_name(lang: str) -> str:
    try:
        return Locale.parse(lang).english_name or lang
    except (ValueError, UnknownLocaleError):
        return lang


def po_path(lang: str) -> pathlib.Path:
    return I18N / "locales" / lang / "LC_MESSAGES" / "messages.po"


def load(path: pathlib.Path, locale: str | None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def save(catalog: Catalog, path: pathlib.Path, *, omit_header: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog, sort_output=True, omit_header=omit_header, width=76, include_lineno=False)


def flags(msgid: str) -> set[str]:
    return {"python-brace-format"} if "{" in msgid else set()


def check_text(lang: str, msgid: str, plural: str | None, text, num_plurals: int) -> str | None:
    """Why `text` is not a usable translation of msgid in `lang` (None when it is): the right
    number of plural forms, and the msgid's placeholders kept."""
    if plural is None:
        if not isinstance(text, str) or not text:
            return "no translation"
        if set(PLACEHOLDER.findall(text)) != set(PLACEHOLDER.findall(msgid)):
            return f"placeholders differ: {text!r}"
        return None
    if not isinstance(text, list) or not all(isinstance(f, str) and f for f in text):
        return f"a plural message needs a list of {num_plurals} forms"
    if len(text) != num_plurals:
        return f"{len(text)} plural form(s) given, {lang} has {num_plurals}"
    wanted = set(PLACEHOLDER.findall(plural))
    if set(PLACEHOLDER.findall(text[-1])) != wanted or any(not set(PLACEHOLDER.findall(f)) <= wanted for f in text):
        return f"placeholders differ: {text!r}"
    return None


def add(entries: dict[str, dict]) -> None:
    """Add `entries` (msgid → {lang: text, "plural"?: str}) to the template and every catalog."""
    langs = languages()
    shipped = [lang for lang in langs if lang != "en"]
    plurals = {lang: load(po_path(lang), lang).num_plurals for lang in shipped}
    problems: list[str] = []
    missing_langs: set[str] = set()
    for msgid, tr in entries.items():
        missing = [lang for lang in shipped if not tr.get(lang)]
        missing_langs.update(missing)
        if missing:
            problems.append(f"  {msgid!r}: no translation for {', '.join(missing)}")
        for lang in shipped:
            if tr.get(lang):
                why = check_text(lang, msgid, tr.get("plural"), tr[lang], plurals[lang])
                if why:
                    problems.append(f"  {msgid!r} [{lang}]: {why}")
    if problems:
        head = "Nothing was added."
        if missing_langs:
            names = ", ".join(f"{lang} ({language_name(lang)})" for lang in sorted(missing_langs))
            head += (f" Every shipped language needs a translation; missing languages: {names}."
                     f"\nShipped languages: {', '.join(shipped)}.")
        raise SystemExit(head + "\n" + "\n".join(problems))
    pot = load(POT, None)
    for msgid, tr in entries.items():
        key = (msgid, tr["plural"]) if "plural" in tr else msgid
        pot.add(key, "", flags=flags(msgid))
    save(pot, POT, omit_header=True)
    for lang in langs:
        path = po_path(lang)
        cat = load(path, lang)
        for msgid, tr in entries.items():
            key = (msgid, tr["plural"]) if "plural" in tr else msgid
            if lang == "en":
                string = ("", "") if "plural" in tr else ""
            else:
                string = tuple(tr[lang]) if "plural" in tr else tr[lang]
            if msgid in cat:
                del cat[msgid]
            cat.add(key, string, flags=flags(msgid))
        save(cat, path)


def write_language(lang: str, translations: dict[str, str | list[str]]) -> int:
    """Write `lang`'s catalog: every template msgid with its text from `translations`, else the
    one already in the catalog. Returns how many messages it holds."""
    try:
        Locale.parse(lang)
    except (ValueError, UnknownLocaleError):
        raise SystemExit(f"{lang!r} is not a locale Babel knows (use e.g. it, pt_BR, pl)") from None
    pot = load(POT, None)
    path = po_path(lang)
    old = load(path, lang) if path.exists() else None
    cat = old if old is not None else Catalog(locale=lang, project="booking", fuzzy=False)
    template = {m.id if isinstance(m.id, str) else m.id[0]: m for m in pot if m.id}
    problems = [f"  {msgid!r}: not in {POT.name}" for msgid in translations if msgid not in template]
    entries: list[tuple[object, object, str]] = []
    for msgid, message in template.items():
        plural = None if isinstance(message.id, str) else message.id[1]
        text = translations.get(msgid)
        if text is None and old is not None and msgid in old:
            existing = old[msgid]
            same_key = (existing.id == message.id) or (
                not isinstance(existing.id, str) and tuple(existing.id) == tuple(message.id))
            if same_key and not existing.fuzzy:
                text = list(existing.string) if plural is not None else existing.string
        why = check_text(lang, msgid, plural, text, cat.num_plurals)
        if why:
            problems.append(f"  {msgid!r}: {why}")
            continue
        entries.append((message.id, tuple(text) if plural is not None else text, msgid))
    if problems:
        raise SystemExit(f"{lang} ({language_name(lang)}): {len(problems)} problem(s), nothing was written:\n"
                         + "\n".join(problems[:60]))
    for msgid in [m.id if isinstance(m.id, str) else m.id[0] for m in cat if m.id]:
        del cat[msgid]  # (obsolete messages go; the template decides)
    for key, string, msgid in entries:
        cat.add(key, string, flags=flags(msgid))
    save(cat, path)
    return len(entries)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--language", help="write this language's whole catalog from FILE.json")
    parser.add_argument("file", type=pathlib.Path)
    args = parser.parse_args(argv[1:])
    entries = json.loads(args.file.read_text(encoding="utf-8"))
    with (I18N / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if args.language:
            count = write_language(args.language, entries)
            print(f"{count} message(s) in the {args.language} catalog")
            return 0
        add(entries)
    print(f"{len(entries)} message(s) added to {POT.name} and {len(languages())} catalogs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
