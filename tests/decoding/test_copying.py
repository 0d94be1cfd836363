"""Edit-aware copying on token sequences: after each kind of edit the copier is back on
the source within a step or two, where plain n-gram lookup needs min_ngram tokens."""

from __future__ import annotations

from collections.abc import Sequence

from specdec_jupyter.decoding.copying import EditAwareCopier
from specdec_jupyter.decoding.drafters import PromptLookupDrafter
from specdec_jupyter.decoding.history import HistoryIndex

SOURCE = list(range(100, 140))  # 40 distinct tokens: the code to be copied with an edit
PROMPT = [1, *SOURCE, 2, 3]  # the source, then "return it edited"
X, Y = 900, 901  # tokens that are not in the source


def misses(output: Sequence[int], prompt: Sequence[int] = PROMPT, **options) -> list[int]:
    """Positions of `output` whose token the copier did not guess first, had it copied
    along token by token (a greedy main model emitting `output`)."""
    copier = EditAwareCopier(**options)
    context = list(prompt)
    wrong = []
    for position, token in enumerate(output):
        copier.follow(context)
        if copier.guess(1)[0] != [token]:
            wrong.append(position)
        context.append(token)
    return wrong


def test_an_unchanged_copy_is_guessed_from_its_second_token():
    assert misses(SOURCE) == [0, 1], "two tokens to find the source by its n-gram"


def test_a_substitution_costs_the_new_token_only():
    output = [*SOURCE[:10], X, *SOURCE[11:]]
    assert misses(output) == [0, 1, 10]


def test_an_insertion_realigns_one_step_after_it_and_the_next_one_costs_nothing_more():
    once = [*SOURCE[:10], X, Y, *SOURCE[10:20]]
    assert misses(once) == [0, 1, 10, 11, 12], "the inserted tokens, then one step"
    twice = [*once, 902, 903, *SOURCE[20:]]
    assert misses(twice)[5:] == [22, 23], "a second edit of its shape: only its own tokens"


def test_a_deletion_realigns_on_the_first_copied_token_after_it():
    output = [*SOURCE[:10], *SOURCE[13:]]
    assert misses(output) == [0, 1, 10]


def test_a_longer_replacement_realigns_when_the_copy_resumes():
    output = [*SOURCE[:10], X, Y, 902, *SOURCE[11:]]  # one source token became three
    assert misses(output) == [0, 1, 10, 11, 12, 13], "the new tokens, then one step"


def test_a_two_token_name_renamed_to_one_costs_one_step_from_its_second_use_on():
    name = [500, 501]  # " last", "_error" renamed to " failure"
    source = [*SOURCE[:10], *name, *SOURCE[10:20], *name, *SOURCE[20:30], *name, *SOURCE[30:]]
    output = [*SOURCE[:10], X, *SOURCE[10:20], X, *SOURCE[20:30], X, *SOURCE[30:]]
    wrong = misses(output, prompt=[1, *source, 2, 3])
    assert wrong == [0, 1, 10, 11, 21, 32], "the first use shows the edit's shape"


def test_a_jump_too_far_to_bridge_is_found_again_by_the_ngram():
    output = [*SOURCE[:10], *SOURCE[25:35]]
    assert misses(output) == [0, 1, 10, 11], "a 2-gram outweighs the edit's readings"


def test_options_name_the_evidence_and_the_source():
    lookup = PromptLookupDrafter()
    context = [*PROMPT, *SOURCE[:6]]
    [option] = lookup.options(context, 3)
    assert option.source == "prompt-lookup/5" and option.preview == SOURCE[6:9]
    [option] = lookup.options([*context, X], 3)
    assert option.source == "prompt-lookup/0", "right after an edit: a guess with no evidence"
    assert option.preview == SOURCE[7:10], "a substitution by default"


def test_earlier_generations_draft_what_the_context_lacks():
    history = HistoryIndex()
    history.add(SOURCE)
    lookup = PromptLookupDrafter(history=history)
    [option] = lookup.options([7, 8, *SOURCE[:3]], 4)
    assert option.source == "history/3" and option.preview == SOURCE[3:7]
    assert misses(SOURCE, prompt=[7, 8], history=history) == [0, 1]
    assert misses(SOURCE, prompt=[7, 8]) == list(range(40)), "without history: nothing to copy"


def test_a_history_draft_stops_at_the_end_of_what_was_written():
    history = HistoryIndex()
    history.add(SOURCE[:12])
    lookup = PromptLookupDrafter(history=history)
    assert lookup.lookup([5, *SOURCE[:9]], 8) == SOURCE[9:12]


def test_a_long_insertion_is_bridged_by_the_copy_it_interrupted():
    docstring = list(range(910, 930))  # 20 new tokens, then the copy goes on
    output = [*SOURCE[:10], *docstring, *SOURCE[10:]]
    assert misses(output) == [0, 1, *range(10, 31)], "the new tokens, then one step"


def test_the_context_comes_before_history_and_an_edit_before_a_guess_elsewhere():
    history = HistoryIndex()
    history.add([*SOURCE[:5], X, Y, 903, 904, 905, 906, 907])
    lookup = PromptLookupDrafter(history=history)
    assert lookup.lookup([*PROMPT, *SOURCE[:5]], 2) == SOURCE[5:7]
