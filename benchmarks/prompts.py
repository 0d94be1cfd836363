"""The benchmark's prompts: the seed's three, a third prose prompt, and eight kinds of code edit.

Each edit hands the model code and asks for it back changed (a rename, type hints,
docstrings, a bug fix, reformatting, comments translated, a function extracted, logging
added), so most of the answer repeats the prompt: where free drafts (copying) pay. The
prose prompts repeat nothing: there a draft must pay its way or stay off.
"""

from __future__ import annotations

from specdec_jupyter.sessions.examples import CODE_EDIT, FUNCTION, SEED_PROMPTS

PROSE_PROMPTS = {
    "pythagoras": SEED_PROMPTS["pythagoras"],
    "dc-trip": SEED_PROMPTS["dc-trip"],
    "lighthouse": "Write a short story about a lighthouse keeper who finds a message in a bottle.",
}


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

BUGGY = """\
def moving_average(values, window):
    \"\"\"The mean of each run of `window` consecutive values.\"\"\"
    if window <= 0:
        raise ValueError("window must be positive")
    averages = []
    total = sum(values[:window])
    averages.append(total / window)
    for i in range(window, len(values) - 1):
        total += values[i] - values[i - window]
        averages.append(total / window)
    return averages


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
"""

CRAMPED = """\
import json,os
def load_settings(path,defaults=None,strict=False):
  defaults=defaults or {}
  if not os.path.exists(path):
    if strict:raise FileNotFoundError(path)
    return dict(defaults)
  with open(path) as f:data=json.load(f)
  merged=dict(defaults);merged.update({k:v for k,v in data.items() if v is not None})
  unknown=[k for k in merged if k not in defaults]
  if strict and unknown:raise KeyError("unknown settings: "+", ".join(sorted(unknown)))
  return merged
def save_settings(path,settings):
  tmp=path+".tmp"
  with open(tmp,"w") as f:json.dump(settings,f,indent=2,sort_keys=True)
  os.replace(tmp,path)
"""

GERMAN_COMMENTS = """\
def schedule(tasks, workers):
    # Aufgaben nach Dauer sortieren, die längsten zuerst
    ordered = sorted(tasks, key=lambda task: -task["duration"])
    # Jeder Arbeiter beginnt ohne Last
    load = {worker: 0 for worker in workers}
    plan = {worker: [] for worker in workers}
    for task in ordered:
        # Den Arbeiter mit der geringsten Last wählen
        worker = min(load, key=load.get)
        plan[worker].append(task["name"])
        # Die Last des Arbeiters erhöhen
        load[worker] += task["duration"]
    # Die gesamte Dauer ist die größte Last
    makespan = max(load.values(), default=0)
    return plan, makespan
"""

CODE_PROMPTS = {
    "code-rename": CODE_EDIT,
    "code-type-hints": "Add type hints to every function and method of this Python code "
    "and return the complete code. Write code only.\n\n```python\n" + UNTYPED + "```",
    "code-docstrings": "Add a one-line docstring to every method of this class and return "
    "the complete code. Write code only.\n\n```python\n" + UNTYPED + "```",
    "code-bug-fix": "The first function skips the last window. Fix the bug and return the "
    "complete code, otherwise unchanged. Write code only.\n\n```python\n" + BUGGY + "```",
    "code-reformat": "Reformat this Python code to PEP 8 (one statement per line, spaces "
    "around operators, four-space indents) and return it. Write code only.\n\n```python\n"
    + CRAMPED
    + "```",
    "code-translate-comments": "Translate the comments of this Python function into English "
    "and return the complete function. Write code only.\n\n```python\n" + GERMAN_COMMENTS + "```",
    "code-extract-function": "Here is a Python function:\n\n```python\n"
    + FUNCTION
    + "```\n\nExtract the currency conversion into a helper function `convert(record, "
    "amount, currency)` and return the complete code. Write code only.",
    "code-add-logging": "Here is a Python function:\n\n```python\n"
    + FUNCTION
    + "```\n\nAdd logging: a module-level `logger = logging.getLogger(__name__)` and a "
    "`logger.debug` call for every skipped customer. Return the complete code. Write code only.",
}

PROMPTS = {**SEED_PROMPTS, **PROSE_PROMPTS, **CODE_PROMPTS}
QUICK_PROMPTS = ["pythagoras", "code-rename", "code-bug-fix"]  # what --quick runs
