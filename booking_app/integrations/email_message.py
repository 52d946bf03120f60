"""Our email message type and its safe MIME form, shared by every email transport.

Header values are made single-line before any transport sees them (`safe_message`), so
no stored value can break or inject email headers.
"""
from __future__ import annotations

import dataclasses
import email.message
import email.policy
import re
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import formatdate, make_msgid, parseaddr
from typing import Protocol

from booking_app.integrations.delivery import DeliveryError


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str  # e.g. "text/calendar"
    params: dict[str, str] = field(default_factory=dict)  # e.g. {"method": "REQUEST"}


@dataclass(frozen=True)
class EmailMessage:
    to: str
    subject: str
    text: str
    html: str
    sender: str  # "Name <address>"
    attachments: tuple[Attachment, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


class EmailSender(Protocol):
    name: str

    def send(self, message: EmailMessage) -> str | None: ...


#: characters a header value must never carry: C0/C1 controls (CR, LF, NUL, TAB, ESC…),
#: DEL, and the Unicode line/paragraph separators some clients render as line breaks
_HEADER_BREAKERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(" {2,}")
_NAMED_ADDRESS = re.compile(r"(?P<name>[^<>]*)<(?P<addr>[^<>]*)>\s*", re.DOTALL)
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 field name: printable ASCII but ':'


def header_text(value: str) -> str:
    """`value` made safe for one header line (Subject, display names, extra headers):
    every run of control characters becomes one space. Defence in depth: input validation
    refuses CR/LF in single-line fields, but a value that got into the database another
    way (an import, an old row, a direct edit) must not break or inject email headers."""
    return _SPACES.sub(" ", _HEADER_BREAKERS.sub(" ", str(value))).strip()


def header_address(value: str, *, with_name: bool = False) -> str:
    """A recipient (bare address) or sender (`Name <addr>`, `with_name`) header without
    control characters: a sender's display name is cleaned like any header text; a
    recipient, or an address part, with control characters in it is refused, never guessed
    at (DeliveryError, permanent: retrying can't help)."""
    text = str(value)
    if not _HEADER_BREAKERS.search(text):
        return text
    named = _NAMED_ADDRESS.fullmatch(text) if with_name else None
    if named and "@" in named["addr"] and not _HEADER_BREAKERS.search(named["addr"]) and " " not in named["addr"]:
        try:
            return str(Address(display_name=header_text(named["name"]).strip('"').strip(), addr_spec=named["addr"]))
        except (ValueError, IndexError):
            pass
    raise DeliveryError(f"not a deliverable address: {text!r}", transient=False)


def safe_message(message: EmailMessage) -> EmailMessage:
    """The message with every header value made single-line (see header_text/header_address);
    extra headers with an invalid name are dropped. Every transport sends only this."""
    headers = {key: header_text(value) for key, value in message.headers.items() if _HEADER_NAME.match(str(key))}
    attachments = tuple(dataclasses.replace(att, filename=header_text(att.filename) or "attachment",
                                            params={k: header_text(v) for k, v in att.params.items()
                                                    if _HEADER_NAME.match(str(k))})
                        for att in message.attachments)
    return dataclasses.replace(message, to=header_address(message.to), sender=header_address(message.sender, with_name=True),
                               subject=header_text(message.subject), headers=headers, attachments=attachments)


def sender_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


def to_mime(message: EmailMessage) -> email.message.EmailMessage:
    """multipart/mixed( multipart/alternative(text/plain, text/html), attachments… )."""
    message = safe_message(message)
    mime = email.message.EmailMessage(policy=email.policy.SMTP)
    mime["Subject"] = message.subject
    mime["From"] = message.sender
    mime["To"] = message.to
    mime["Date"] = formatdate(usegmt=True)
    mime["Message-ID"] = make_msgid(domain=sender_domain(message.sender))
    mime.set_content(message.text, subtype="plain", charset="utf-8")
    mime.add_alternative(message.html, subtype="html", charset="utf-8")
    for att in message.attachments:
        maintype, _, subtype = att.content_type.partition("/")
        mime.add_attachment(att.content, maintype=maintype, subtype=subtype or "octet-stream",
                            filename=att.filename, params=dict(att.params))
    for key, value in message.headers.items():  # after set_content, which drops Content-* headers
        mime[key] = value
    return mime
