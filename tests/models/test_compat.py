"""llama.cpp's draft compatibility rule on synthetic vocabularies."""

from dataclasses import replace

from specdec_jupyter.models.drafts.compat import llamacpp_compatibility
from specdec_jupyter.models.vocabulary import VocabularyFacts

BASE = VocabularyFacts(
    vocab_type="BPE",
    size=300,
    bos_id=1,
    eos_id=2,
    add_bos=False,
    add_eos=False,
    token_texts=tuple(f"t{i}" for i in range(300)),
)


def test_identical_vocabularies_are_compatible():
    assert llamacpp_compatibility(BASE, BASE).compatible


def test_sizes_up_to_128_apart_are_compatible():
    bigger = replace(BASE, size=428, token_texts=(*BASE.token_texts, *("x",) * 128))
    assert llamacpp_compatibility(BASE, bigger).compatible
    too_big = replace(bigger, size=429, token_texts=(*bigger.token_texts, "y"))
    verdict = llamacpp_compatibility(BASE, too_big)
    assert verdict.reasons == ["vocabulary sizes 300 vs 429 (more than 128 apart)"]


def test_the_first_different_token_text_is_named():
    texts = list(BASE.token_texts)
    texts[7], texts[9] = "seven", "nine"
    verdict = llamacpp_compatibility(BASE, replace(BASE, token_texts=tuple(texts)))
    assert verdict.reasons == ["token 7: 't7' vs 'seven'"]


def test_tokens_below_five_are_not_compared():
    texts = ("other", *BASE.token_texts[1:])
    assert llamacpp_compatibility(BASE, replace(BASE, token_texts=texts)).compatible


def test_type_and_special_token_differences_are_all_listed():
    other = replace(BASE, vocab_type="SPM", add_bos=True, eos_id=3)
    assert llamacpp_compatibility(BASE, other).reasons == [
        "vocabulary types BPE vs SPM",
        "add-BOS false vs true",
    ]
    added = replace(BASE, add_eos=True)
    assert llamacpp_compatibility(added, replace(added, eos_id=3)).reasons == [
        "EOS token ids 2 vs 3"
    ]
