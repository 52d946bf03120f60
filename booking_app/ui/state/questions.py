"""Booking questions in the UI (issue 24, point 4): the provider's editor (a substate of the
bookable editor) and the questions of the booking form (the review step, signed-in and
guest). Both only parse the form and call the services: the definitions are checked by
catalog.update_bookable, the answers by the booking service (services/booking_questions.py),
whose errors come back here to be shown next to their field."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import reflex as rx

from booking_app.config import SUPPORTED_LOCALES
from booking_app.i18n import N_, translate
from booking_app.services import booking_questions, catalog
from booking_app.services.bookable_access import can_manage
from booking_app.services.errors import InvalidInput, ServiceError
from booking_app.ui.state import fmt
from booking_app.ui.state.base import AppState
from booking_app.ui.state.bookable_editor import BookableEditorState

#: form field names of the answers: `answer__<id>`, a multiple choice's boxes `answer__<id>__<n>`
ANSWER_PREFIX = "answer__"
BAD_TRANSLATION = N_("Write each translation as a language code, a colon and the text.")


def _number_text(value: Any) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


# ---- the booking form --------------------------------------------------------------------------

@dataclasses.dataclass
class FormQuestion:
    id: str = ""
    type: str = ""
    label: str = ""
    required: bool = False
    options: list[str] = dataclasses.field(default_factory=list)
    error: str = ""


def answers_from_form(questions: list[Mapping[str, Any]], form: Mapping[str, Any]) -> dict[str, Any]:
    """The answers typed in the review form (field names: ANSWER_PREFIX) → {question id: value}
    for the booking service, which checks them; empty fields are left out."""
    answers: dict[str, Any] = {}
    for q in questions:
        name = ANSWER_PREFIX + q["id"]
        if q["type"] == "multiple_choice":
            chosen = [str(form[k]) for k in sorted(form, key=str) if str(k).startswith(name + "__") and form[k]]
            if chosen:
                answers[q["id"]] = chosen
            continue
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            answers[q["id"]] = value[:booking_questions.LONG_TEXT_MAX + 1]
    return answers


class QuestionsFormState(AppState):
    """The review step's questions: the bookable's, in the page's language, each with its
    own inline error from the last attempt."""

    raw: list[dict[str, Any]] = []
    errors: dict[str, str] = {}

    @rx.event
    def load(self):
        self._load(fmt.int_param(self.router.url.query_parameters.get("id")) or 0)

    @rx.event
    def load_for(self, bookable_id: int):
        """The questions of `bookable_id` (the waitlist's join form: its page names it otherwise)."""
        self._load(bookable_id)

    def _load(self, bookable_id: Any) -> None:
        self.raw, self.errors = [], {}
        if not isinstance(bookable_id, int) or isinstance(bookable_id, bool) or bookable_id <= 0:
            return
        try:
            view = catalog.get_bookable(bookable_id=bookable_id, actor=self._actor())
        except ServiceError:
            return
        self.raw = list(view.questions)

    @rx.var
    def items(self) -> list[FormQuestion]:
        return [FormQuestion(id=q["id"], type=q["type"], label=booking_questions.label_for(q, self.locale),
                             required=bool(q.get("required")), options=list(q.get("options") or []),
                             error=self.errors.get(q["id"], "")) for q in self.raw]

    def answers(self, form: Mapping[str, Any]) -> dict[str, Any]:
        """The answers in the submitted `form` (and the old inline errors cleared)."""
        self.errors = {}
        return answers_from_form(self.raw, form)

    def show_error(self, exc: ServiceError) -> bool:
        """Show `exc` next to its question when it is about an answer → whether it was."""
        field = exc.field or ""
        if not field.startswith("answers."):
            return False
        self.errors = {field.removeprefix("answers."): self._error_text(exc)}
        return True


# ---- the provider's editor -----------------------------------------------------------------------

@dataclasses.dataclass
class EditorQuestion:
    id: str = ""
    type: str = "short_text"
    label: str = ""
    required: bool = False
    options: str = ""  # one per line
    translations: str = ""  # "es: text" lines
    min: str = ""
    max: str = ""


def _row(q: Mapping[str, Any]) -> EditorQuestion:
    return EditorQuestion(
        id=q["id"], type=q["type"], label=q["label"], required=bool(q.get("required")),
        options="\n".join(q.get("options") or []),
        translations="\n".join(f"{lang}: {text}" for lang, text in (q.get("labels") or {}).items()),
        min=_number_text(q.get("min")), max=_number_text(q.get("max")))


def _translations(text: str, index: int) -> dict[str, str]:
    """The "es: text" lines of one question → {language: label}."""
    labels: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        lang, sep, label = line.partition(":")
        lang = lang.strip().replace("-", "_")
        if lang.lower() == "pt_br":
            lang = "pt_BR"
        if not sep or lang not in SUPPORTED_LOCALES:
            raise InvalidInput(BAD_TRANSLATION, field=f"questions.{index}.labels")
        labels[lang] = label.strip()
    return labels


def definitions(rows: list[EditorQuestion]) -> list[dict[str, Any]]:
    """The editor's rows → the question list for catalog.update_bookable (which checks it)."""
    out = []
    for i, r in enumerate(rows):
        q: dict[str, Any] = {"id": r.id or None, "type": r.type, "label": r.label, "required": r.required,
                             "labels": _translations(r.translations, i)}
        if r.type in booking_questions.CHOICE_TYPES:
            q["options"] = booking_questions.options_from_text(r.options)
        if r.type == "number":
            q["min"], q["max"] = r.min.strip() or None, r.max.strip() or None
        out.append(q)
    return out


class QuestionsEditorState(BookableEditorState):
    """The bookable editor's questions card: add, change, remove, save (all at once)."""

    rows: list[EditorQuestion] = []
    row_errors: dict[str, str] = {}  # "<index>.<field>" → message
    questions_error: str = ""
    questions_saved: str = ""
    questions_saving: bool = False

    @rx.var(cache=True)
    def type_options(self) -> list[dict[str, str]]:
        return [{"value": t, "label": translate(booking_questions.TYPE_LABELS[t], self.locale)}
                for t in booking_questions.TYPES]

    @rx.event
    def load_questions(self):
        self.row_errors, self.questions_error, self.questions_saved = {}, "", ""
        self.questions_saving = False
        if not self.bookable_id:
            self.rows = []
            return
        try:
            view = catalog.get_bookable(bookable_id=self.bookable_id, actor=self._actor())
        except ServiceError as exc:
            self.questions_error = self._error_text(exc)
            return
        self.rows = [_row(q) for q in view.questions]

    @rx.event
    def add_question(self):
        self.rows = [*self.rows, EditorQuestion()]
        self.questions_saved = ""

    @rx.event
    def remove_question(self, index: int):
        self.rows = [r for i, r in enumerate(self.rows) if i != index]
        self.row_errors, self.questions_saved = {}, ""

    @rx.event
    def set_question(self, index: int, name: str, value: Any):
        if not 0 <= index < len(self.rows) or name not in ("type", "label", "required", "options", "translations",
                                                          "min", "max"):
            return
        if name == "type" and value not in booking_questions.TYPES:
            return
        value = bool(value) if name == "required" else str(value)[:4000]
        rows = list(self.rows)
        rows[index] = dataclasses.replace(rows[index], **{name: value})
        self.rows = rows
        self.questions_saved = ""

    @rx.event
    async def save_questions(self):
        if self.questions_saving or not self.bookable_id:
            return
        self.questions_saving = True
        self.row_errors, self.questions_error, self.questions_saved = {}, "", ""
        yield
        actor = self._actor()
        try:
            view = catalog.get_bookable(bookable_id=self.bookable_id, actor=actor)
            if not can_manage(actor, view):
                raise InvalidInput(N_("This service does not exist."))
            saved = catalog.update_bookable(actor=actor, bookable_id=self.bookable_id,
                                            questions=definitions(self.rows))
        except ServiceError as exc:
            self._show_error(exc)
            self.questions_saving = False
            return
        self.rows = [_row(q) for q in saved.questions]
        self.questions_saved = translate("Questions saved.", self.locale)
        self.questions_saving = False

    def _show_error(self, exc: ServiceError) -> None:
        parts = (exc.field or "").split(".")
        if len(parts) >= 3 and parts[0] == "questions" and parts[1].isdigit():
            name = parts[2] if parts[2] != "labels" else "translations"
            self.row_errors = {f"{parts[1]}.{name}": self._error_text(exc)}
        else:
            self.questions_error = self._error_text(exc)
