from specdec_jupyter.engines.detokenize import IncrementalDetokenizer


def test_multibyte_character_split_across_tokens_appears_once_complete():
    data = "é🙂".encode()
    detokenizer = IncrementalDetokenizer()
    pieces = [detokenizer.text_of(data[i : i + 1]) for i in range(len(data))]
    assert "".join(pieces) == "é🙂"
    assert pieces[0] == "" and pieces[1] == "é"


def test_incomplete_bytes_at_the_end_become_a_replacement_character():
    detokenizer = IncrementalDetokenizer()
    assert detokenizer.text_of("🙂".encode()[:2]) == ""
    assert detokenizer.flush() == "\ufffd"


def test_pending_says_whether_bytes_wait_for_their_character():
    detokenizer = IncrementalDetokenizer()
    assert not detokenizer.pending
    detokenizer.text_of("🙂".encode()[:2])
    assert detokenizer.pending
    assert detokenizer.text_of("🙂".encode()[2:]) == "🙂" and not detokenizer.pending
    detokenizer.text_of(b"\xf0")
    detokenizer.flush()
    assert not detokenizer.pending, "a flush ends the character"
