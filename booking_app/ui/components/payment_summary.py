"""Deposits and fees on screen (issue 26): a booking's paid / due lines, the "Pay the balance"
button, the consent text shown before booking a bookable that saves the card for a fee, and
the fee lines of the provider's booking details.

The figures come from the services (payments.booking_money: deposits.money_summary and
fees.fees_of); this module only formats them (`money_lines`, `consent_text`) and renders
them (`summary_block`, `consent_block`)."""
from __future__ import annotations

from typing import Any

import reflex as rx

from booking_app.i18n import N_, translate
from booking_app.services import deposits, money, payments
from booking_app.services.errors import InvalidInput
from booking_app.services.messages import format_money  # (0 is €0.00 here, not "Free")
from booking_app.ui.components import T

#: fee kind → its label
FEE_LABELS = {"no_show": N_("No-show fee"), "late_cancel": N_("Late cancellation fee")}
#: fee status → how the booking page says it
FEE_STATUS = {"charged": N_("charged"), "due": N_("due"), "failed": N_("due (the card was declined)"),
              "requires_action": N_("waiting for the customer to confirm the payment"), "charging": N_("due")}


def money_lines(money: payments.BookingMoney | None, locale: str) -> dict[str, Any]:
    """The booking's money as display text: paid, due, deposit, balance, fee lines, and
    whether the customer may pay the balance online now."""
    if money is None:
        return {}
    s = money.summary
    cur = s.currency
    fees = [{"id": str(f.id), "text": translate("{fee}: {amount}, {status}", locale,
                                                  fee=translate(FEE_LABELS.get(f.kind, f.kind), locale),
                                                  amount=format_money(f.amount_cents, f.currency, locale),
                                                  status=translate(FEE_STATUS.get(f.status, f.status), locale)),
             "status": f.status, "url": f.checkout_url or ""} for f in money.fees]
    show = bool(s.deposit_cents or s.balance_due_cents or fees)
    return {
        "show": show,
        "paid": translate("Paid: {amount}", locale, amount=format_money(s.paid_cents, cur, locale)),
        "due": translate("Due: {amount}", locale, amount=format_money(s.due_cents, cur, locale)),
        "deposit": translate("Deposit: {amount}", locale, amount=format_money(s.deposit_cents, cur, locale))
        if s.deposit_cents else "",
        "balance": translate("Balance to pay: {amount}", locale, amount=format_money(s.balance_due_cents, cur, locale))
        if s.balance_due_cents else "",
        "can_pay_balance": s.balance_due_cents > 0,
        "fees": fees,
    }


def consent_text(svc: dict[str, Any], locale: str, *, online: bool, saves_card: bool = True) -> str:
    """The consent shown before booking a bookable that charges fees (its card is saved for
    them, when Stripe is on: `saves_card`), and what a deposit takes now (paying `online`).
    Empty when neither applies."""
    if not svc:
        return ""
    parts = []
    price = int(svc.get("price_cents") or 0)
    deposit = deposits.deposit_of(price, deposit_percent=svc.get("deposit_percent"),
                                  deposit_cents=svc.get("deposit_cents"))
    if online and 0 < deposit < price:
        parts.append(translate("You pay a deposit of {deposit} now; the rest, {balance}, later.", locale,
                               deposit=format_money(deposit, svc["currency"], locale),
                               balance=format_money(price - deposit, svc["currency"], locale)))
    no_show, late = int(svc.get("no_show_fee_cents") or 0), int(svc.get("late_cancel_fee_cents") or 0)
    if saves_card and (no_show or late):
        fees = []
        if no_show:
            fees.append(translate("a no-show fee of {amount}", locale, amount=format_money(no_show, svc["currency"], locale)))
        if late:
            fees.append(translate("a late cancellation fee of {amount}", locale,
                                  amount=format_money(late, svc["currency"], locale)))
        parts.append(translate("By booking you agree that your card is saved to charge {fees} if it applies.",
                               locale, fees=", ".join(fees)))
    return " ".join(parts)


def consent_block(text: rx.Var) -> rx.Component:
    """The review step's consent / deposit note (nothing when empty)."""
    return rx.cond(text != "", rx.callout(text, icon="info", size="1", id="payment-consent"))


def summary_block(money: rx.Var, pay_balance: Any, busy: rx.Var) -> rx.Component:
    """Paid / due, deposit, balance and fee lines; "Pay the balance" when it can be paid."""
    return rx.cond(
        money["show"].to(bool),
        rx.vstack(
            rx.text(money["paid"].to(str), size="2", custom_attrs={"data-testid": "money-paid"}),
            rx.text(money["due"].to(str), size="2", weight="medium", custom_attrs={"data-testid": "money-due"}),
            rx.cond(money["deposit"].to(str) != "", rx.text(money["deposit"].to(str), size="2", color_scheme="gray")),
            rx.cond(money["balance"].to(str) != "",
                    rx.text(money["balance"].to(str), size="2", custom_attrs={"data-testid": "money-balance"})),
            rx.foreach(money["fees"].to(list[dict[str, str]]),
                       lambda f: rx.text(f["text"], size="2", custom_attrs={"data-testid": "money-fee"})),
            rx.cond(money["can_pay_balance"].to(bool),
                    rx.button(rx.icon("credit_card", size=16), T("Pay the balance"), on_click=pay_balance, size="3",
                              loading=busy, disabled=busy, custom_attrs={"data-testid": "pay-balance"})),
            spacing="1", align="start", width="100%", custom_attrs={"data-testid": "money-summary"},
        ),
    )


# ---- the bookable editor's deposit and fee fields ------------------------------------------

#: the editor's form fields (amounts typed like a price; the deposit percent as a whole number)
EDITOR_FIELDS = ("deposit_percent", "deposit", "no_show_fee", "late_cancel_fee")
#: service field → the editor's form field
EDITOR_ALIASES = {"deposit_cents": "deposit", "no_show_fee_cents": "no_show_fee",
                  "late_cancel_fee_cents": "late_cancel_fee"}


def editor_form(view: Any) -> dict[str, str]:
    """A bookable's deposit and fee fields as the editor shows them ("" = none)."""
    def amount(cents: int | None) -> str:
        return money.format_price(cents, view.currency) if cents else ""
    return {"deposit_percent": str(view.deposit_percent or ""), "deposit": amount(view.deposit_cents),
            "no_show_fee": amount(view.no_show_fee_cents), "late_cancel_fee": amount(view.late_cancel_fee_cents)}


def editor_fields(values: dict[str, str], currency: str) -> dict[str, Any]:
    """The editor's typed values → the service's fields (money.parse_price reads the amounts;
    the catalog service validates them: deposits.clean_policy)."""
    out: dict[str, Any] = {"deposit_percent": values.get("deposit_percent") or None}
    for form_name, field_name in (("deposit", "deposit_cents"), ("no_show_fee", "no_show_fee_cents"),
                                  ("late_cancel_fee", "late_cancel_fee_cents")):
        try:
            cents = money.parse_price(values.get(form_name, ""), currency or "EUR")
        except InvalidInput as exc:
            exc.field = field_name
            raise
        out[field_name] = cents if cents or field_name != "deposit_cents" else None
    return out


def editor_inputs(state: Any, make_input: Any) -> list[rx.Component]:
    """The editor's deposit and fee inputs (`make_input`: the page's labelled input)."""
    return [
        make_input(state, N_("Deposit (% of the price)"), "deposit_percent", type="number", min=1, max=100,
                   hint=N_("Paid online at booking; the rest later. Empty: the whole price.")),
        make_input(state, N_("Deposit (amount)"), "deposit", input_mode="decimal",
                   hint=N_("Instead of a percent. Empty: none.")),
        make_input(state, N_("No-show fee"), "no_show_fee", input_mode="decimal",
                   hint=N_("Charged to the saved card when you mark a no-show. Empty: none.")),
        make_input(state, N_("Late cancellation fee"), "late_cancel_fee", input_mode="decimal",
                   hint=N_("Customers may then cancel after the cut-off, for this fee. Empty: none.")),
    ]


# ---- the provider's booking list ------------------------------------------------------------

def row_money(view: Any, fee_views: list[Any], locale: str) -> str:
    """A booking row's balance and fee lines for the provider (empty when neither)."""
    parts = []
    if view.balance_due_cents and view.status not in ("cancelled",):
        parts.append(translate("Balance to pay: {amount}", locale,
                               amount=format_money(view.balance_due_cents, view.currency, locale)))
    for f in fee_views:
        parts.append(translate("{fee}: {amount}, {status}", locale,
                               fee=translate(FEE_LABELS.get(f.kind, f.kind), locale),
                               amount=format_money(f.amount_cents, f.currency, locale),
                               status=translate(FEE_STATUS.get(f.status, f.status), locale)))
    return "\n".join(parts)
