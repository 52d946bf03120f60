"""Request/response models of booking questions (issue 24, point 4): a bookable's
`questions` and a booking's `answers`. The rules themselves (types, options, required
answers, formats) are checked by services/booking_questions.py; these models give the
shapes, the limits and the OpenAPI document."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictBool, StrictFloat, StrictInt

from booking_app.api.schemas import ApiModel, LocaleCode, MultiLineStr, RequestModel, SingleLineStr
from booking_app.services import booking_questions as bq

QuestionType = Literal["short_text", "long_text", "single_choice", "multiple_choice", "yes_no", "number", "phone",
                       "email"]
QuestionId = Annotated[str, Field(min_length=1, max_length=32, pattern=bq.ID_RE.pattern)]
Label = Annotated[SingleLineStr, Field(min_length=1, max_length=bq.LABEL_MAX)]
Option = Annotated[SingleLineStr, Field(min_length=1, max_length=bq.OPTION_MAX)]
Bound = Annotated[float, Field(ge=-bq.NUMBER_LIMIT, le=bq.NUMBER_LIMIT, allow_inf_nan=False)]


class QuestionIn(RequestModel):
    id: QuestionId | None = Field(default=None, description="keep a question's id to keep it; none: a new question")
    type: QuestionType
    label: Label = Field(description="the label in the bookable's own language (the fallback)")
    labels: dict[LocaleCode, Annotated[SingleLineStr, Field(max_length=bq.LABEL_MAX)]] | None = Field(
        default=None, description="translated labels by language code")
    required: bool = Field(default=False, strict=True)
    options: list[Option] | None = Field(default=None, max_length=bq.MAX_OPTIONS,
                                         description="single_choice / multiple_choice: the choices offered")
    min: Bound | None = Field(default=None, description="number: the smallest answer allowed")
    max: Bound | None = Field(default=None, description="number: the largest answer allowed")


def questions_field() -> Any:
    return Field(default=None, max_length=bq.MAX_QUESTIONS,
                 description="booking questions (replaces the whole list; [] removes them); old bookings keep "
                             "their answers")


class QuestionOut(ApiModel):
    id: str
    type: QuestionType
    label: str
    labels: dict[str, str] = Field(default_factory=dict)
    required: bool
    options: list[str] | None = None
    min: float | None = None
    max: float | None = None


#: one answer: text (short/long, single choice, phone, email), a list (several choices),
#: true/false (yes/no) or a number
AnswerValue = StrictBool | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)] | Annotated[
    MultiLineStr, Field(max_length=bq.LONG_TEXT_MAX)] | Annotated[list[Option], Field(max_length=bq.MAX_OPTIONS)]


def answers_field() -> Any:
    return Field(default=None, max_length=bq.MAX_QUESTIONS,
                 description="answers to the bookable's questions: {question id: value}")


AnswersIn = dict[Annotated[SingleLineStr, Field(max_length=40)], AnswerValue]

#: a booking's answers as returned: {question id: value} (from the stored snapshot)
AnswersOut = Annotated[dict[str, bool | int | float | str | list[str]],
                       BeforeValidator(lambda v: {} if v is None else bq.answer_map(v) if isinstance(v, list) else v)]
