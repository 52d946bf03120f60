"""Booking questions' widgets (issue 24, point 4): the provider's editor card (the bookable
page) and the questions of the review form (their answers go with the booking; an answer
the service refuses is shown under its question)."""
from __future__ import annotations

import reflex as rx

from booking_app.ui.components import T
from booking_app.ui.state.questions import ANSWER_PREFIX, QuestionsEditorState, QuestionsFormState


# ---- the review form ---------------------------------------------------------------------------

def _answer_input(q) -> rx.Component:
    name = ANSWER_PREFIX + q.id
    input_id = "answer-" + q.id
    invalid = rx.cond(q.error != "", "true", "false")
    # (no `required` attribute: the service decides, and its message shows under the question)
    common = dict(id=input_id, name=name, aria_invalid=invalid,
                  aria_describedby=rx.cond(q.error != "", "answer-error-" + q.id, ""),
                  aria_required=rx.cond(q.required, "true", "false"),
                  custom_attrs={"data-testid": "answer-" + q.id})
    choice = lambda kind, value, text: rx.el.label(  # noqa: E731
        rx.el.input(type=kind, name=value[0], value=value[1], class_name="question-choice-input"),
        rx.text(text, as_="span", size="3"),
        style={"display": "flex", "gap": "0.5em", "align_items": "center", "min_height": "2.75em"},
    )
    return rx.match(
        q.type,
        ("long_text", rx.text_area(rows="3", width="100%", max_length=2000, **common)),
        ("single_choice", rx.el.select(
            rx.el.option(T("Choose…"), value=""),
            rx.foreach(q.options, lambda o: rx.el.option(o, value=o)),
            class_name="native-select", **common)),
        ("multiple_choice", rx.el.div(
            rx.foreach(q.options, lambda o, i: choice("checkbox", (name + "__" + i.to_string(), o), o)),
            role="group", aria_labelledby="question-" + q.id, custom_attrs={"data-testid": "answer-" + q.id})),
        ("yes_no", rx.el.div(
            choice("radio", (name, "yes"), T("Yes")), choice("radio", (name, "no"), T("No")),
            role="radiogroup", aria_labelledby="question-" + q.id, style={"display": "flex", "gap": "1.5em"},
            custom_attrs={"data-testid": "answer-" + q.id})),
        ("number", rx.input(input_mode="decimal", size="3", width="100%", max_length=40,
                            **common)),
        ("phone", rx.input(type="tel", auto_complete="tel", size="3", width="100%", max_length=32,
                           **common)),
        ("email", rx.input(input_mode="email", auto_complete="email", size="3", width="100%", max_length=254,
                           **common)),
        rx.input(size="3", width="100%", max_length=200, **common),
    )


def _form_question(q) -> rx.Component:
    return rx.vstack(
        rx.el.label(q.label, rx.cond(q.required, rx.text(" *", as_="span", aria_hidden="true")),
                    id="question-" + q.id, html_for="answer-" + q.id, class_name="field-label", dir="auto"),
        _answer_input(q),
        rx.cond(q.error != "", rx.text(q.error, id="answer-error-" + q.id, color_scheme="red", size="2",
                                       role="alert", custom_attrs={"data-testid": "answer-error-" + q.id})),
        spacing="1", width="100%", align="stretch",
        custom_attrs={"data-testid": "question"},
    )


def questions_form(bookable_id=None) -> rx.Component:
    """The bookable's questions inside the review form (nothing when it asks none); the
    waitlist's join form passes its `bookable_id` (a state var), the review form's page names it."""
    state = QuestionsFormState
    return rx.fragment(
        rx.cond(state.items.length() > 0,
                rx.vstack(rx.foreach(state.items, _form_question), spacing="3", width="100%",
                          custom_attrs={"data-testid": "booking-questions"})),
        rx.box(on_mount=state.load if bookable_id is None else state.load_for(bookable_id), display="none"),
    )


# ---- the provider's editor ----------------------------------------------------------------------

def _row_error(i, name: str) -> rx.Component:
    key = i.to_string() + "." + name
    state = QuestionsEditorState
    return rx.cond(state.row_errors.contains(key),
                   rx.text(state.row_errors[key], color_scheme="red", size="2", role="alert",
                           custom_attrs={"data-testid": "question-error-" + name}))


def _labelled(msgid: str, control: rx.Component, i, name: str) -> rx.Component:
    return rx.vstack(
        rx.el.label(T(msgid), html_for="q-" + i.to_string() + "-" + name, class_name="field-label"),
        control, _row_error(i, name), spacing="1", width="100%", align="stretch",
    )


def _editor_row(row, i) -> rx.Component:
    state = QuestionsEditorState
    ident = lambda name: "q-" + i.to_string() + "-" + name  # noqa: E731
    return rx.card(
        rx.vstack(
            rx.grid(
                _labelled("Question", rx.input(
                    id=ident("label"), value=row.label, on_change=lambda v: state.set_question(i, "label", v),
                    max_length=200, size="3", width="100%", custom_attrs={"data-testid": "question-label"}),
                    i, "label"),
                _labelled("Answer type", rx.el.select(
                    rx.foreach(state.type_options, lambda t: rx.el.option(t["label"], value=t["value"])),
                    id=ident("type"), value=row.type, on_change=lambda v: state.set_question(i, "type", v),
                    class_name="native-select", custom_attrs={"data-testid": "question-type"}), i, "type"),
                columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%",
            ),
            rx.el.label(
                rx.checkbox(checked=row.required, on_change=lambda v: state.set_question(i, "required", v),
                            custom_attrs={"data-testid": "question-required"}),
                T("Required"), style={"display": "flex", "gap": "0.5em", "align_items": "center"},
            ),
            rx.cond((row.type == "single_choice") | (row.type == "multiple_choice"),
                    _labelled("Options (one per line)", rx.text_area(
                        id=ident("options"), value=row.options, rows="3", width="100%", max_length=3500,
                        on_change=lambda v: state.set_question(i, "options", v),
                        custom_attrs={"data-testid": "question-options"}), i, "options")),
            rx.cond(row.type == "number", rx.grid(
                _labelled("Smallest number", rx.input(
                    id=ident("min"), value=row.min, input_mode="decimal", max_length=20, size="3", width="100%",
                    on_change=lambda v: state.set_question(i, "min", v)), i, "min"),
                _labelled("Largest number", rx.input(
                    id=ident("max"), value=row.max, input_mode="decimal", max_length=20, size="3", width="100%",
                    on_change=lambda v: state.set_question(i, "max", v)), i, "max"),
                columns="2", spacing="3", width="100%")),
            _labelled("Translations (one per line as language code: text, e.g. es: ¿Primera visita?)",
                      rx.text_area(id=ident("translations"), value=row.translations, rows="2", width="100%",
                                   max_length=2500, on_change=lambda v: state.set_question(i, "translations", v)),
                      i, "translations"),
            rx.button(rx.icon("trash-2", size=14), T("Remove question"), type="button", size="2", variant="soft",
                      color_scheme="red", on_click=state.remove_question(i),
                      custom_attrs={"data-testid": "question-remove"}),
            spacing="3", width="100%", align="stretch",
        ),
        width="100%", custom_attrs={"data-testid": "question-row"},
    )


def questions_editor() -> rx.Component:
    """The bookable page's card of booking questions (existing bookables only)."""
    state = QuestionsEditorState
    return rx.card(
        rx.vstack(
            rx.heading(T("Booking questions"), size="5", as_="h2"),
            rx.text(T("Asked when booking. Changing or removing a question never changes the answers of bookings "
                      "already made."), size="2", color_scheme="gray"),
            rx.cond(state.questions_saved != "",
                    rx.callout(state.questions_saved, icon="circle_check", color_scheme="grass", width="100%",
                               role="status", custom_attrs={"data-testid": "questions-saved"})),
            rx.cond(state.questions_error != "",
                    rx.callout(state.questions_error, icon="circle_alert", color_scheme="red", width="100%",
                               role="alert")),
            rx.cond(state.rows.length() == 0,
                    rx.text(T("No questions: customers book without answering any."), size="2")),
            rx.foreach(state.rows, _editor_row),
            rx.flex(
                rx.button(rx.icon("plus", size=16), T("Add a question"), type="button", size="3", variant="soft",
                          on_click=state.add_question, custom_attrs={"data-testid": "question-add"}),
                rx.button(T("Save questions"), type="button", size="3", on_click=state.save_questions,
                          loading=state.questions_saving, disabled=state.questions_saving,
                          custom_attrs={"data-testid": "questions-save"}),
                spacing="3", wrap="wrap",
            ),
            spacing="3", width="100%", align="stretch",
        ),
        on_mount=state.load_questions, width="100%", custom_attrs={"data-testid": "questions-editor"},
    )
