"""The benchmark's prompts: the seed's three, and two code edits that repeat their input."""

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

UNTYPED = """\
class Inventory:
    def __init__(self, items=None, warehouse="main"):
        self.items = dict(items or {})
        self.warehouse = warehouse
        self.history = []

    def add(self, sku, quantity, note=None):
        self.items[sku] = self.items.get(sku, 0) + quantity
        self.history.append((sku, quantity, note))
        return self.items[sku]

    def remove(self, sku, quantity):
        available = self.items.get(sku, 0)
        if quantity > available:
            raise ValueError(f"only {available} of {sku} in stock")
        self.items[sku] = available - quantity
        self.history.append((sku, -quantity, None))
        return self.items[sku]

    def low_stock(self, threshold=5):
        return sorted(sku for sku, count in self.items.items() if count < threshold)

    def total(self, prices):
        return sum(prices.get(sku, 0.0) * count for sku, count in self.items.items())
"""

CODE_PROMPTS = {
    "code-rename": "Here is a Python function:\n\n```python\n"
    + FUNCTION
    + "```\n\nRename the parameter `records` to `orders` and return the whole function. "
    "Write code only.",
    "code-type-hints": "Add type hints to every function and method of this Python code "
    "and return the complete code. Write code only.\n\n```python\n" + UNTYPED + "```",
}

PROMPTS = {**SEED_PROMPTS, **CODE_PROMPTS}
