"""Prompts a first run shows speculative decoding on: the seed's three, and a code edit.

Where a draft pays depends on the machine. On a GPU or Apple silicon a draft model pays on
most text; on a few CPU cores a 0.5B draft token costs about 0.6 of a 1.5B call and pays only
where nearly every token is accepted, but a reply that repeats its prompt, as a code edit
does, can be drafted by copying, which costs nothing. `CODE_EDIT` is such a prompt: the
README's first command, notebook 01 and the chat's first screen run it in draft mode
"hybrid" (copies where they are right, the model where it pays) beside plain decoding.
"""

from __future__ import annotations

SEED_PROMPTS = {
    "quicksort": "Write a quicksort algorithm in Python. Write code only.",
    "pythagoras": "Explain the Pythagorean theorem",
    "dc-trip": "Plan a 1 day trip to DC",
}

FUNCTION = '''\
def summarize_orders(records, currency="EUR", min_total=0.0):
    """Group order records by customer and total them, skipping small customers."""
    totals = {}
    counts = {}
    latest = {}
    for record in records:
        customer = record["customer"].strip().lower()
        amount = float(record["amount"])
        if record.get("currency", currency) != currency:
            rate = record.get("rate", 1.0)
            amount = amount * rate
        totals[customer] = totals.get(customer, 0.0) + amount
        counts[customer] = counts.get(customer, 0) + 1
        when = record.get("date")
        if when is not None and (customer not in latest or when > latest[customer]):
            latest[customer] = when
    summary = []
    for customer, total in sorted(totals.items(), key=lambda item: -item[1]):
        if total < min_total:
            continue
        summary.append({
            "customer": customer,
            "total": round(total, 2),
            "orders": counts[customer],
            "average": round(total / counts[customer], 2),
            "latest": latest.get(customer),
        })
    return summary
'''

CODE_EDIT = (
    "Here is a Python function:\n\n```python\n"
    + FUNCTION
    + "```\n\nRename the parameter `records` to `orders` and return the whole function. "
    "Write code only."
)
CODE_EDIT_TITLE = "Rename a parameter in a 27-line function (a code edit)"
