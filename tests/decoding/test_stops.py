from specdec_jupyter.decoding.events import TokenEvent
from specdec_jupyter.decoding.stops import StopStringFilter


def events(*texts: str) -> list[TokenEvent]:
    return [TokenEvent(i, text, "main", 0) for i, text in enumerate(texts)]


def run(stops: tuple[str, ...], texts: list[str]) -> tuple[str, bool]:
    stop_filter = StopStringFilter(stops)
    shown = []
    for event in events(*texts):
        released, stopped = stop_filter.push(event)
        shown += released
        if stopped:
            return "".join(e.text for e in shown), True
    shown += stop_filter.flush()
    return "".join(e.text for e in shown), False


def test_stop_string_spanning_tokens_is_cut_out():
    assert run(("\n\n",), ["a", "b\n", "\nc", "d"]) == ("ab", True)


def test_text_that_only_looks_like_a_stop_is_released():
    assert run(("###",), ["a#", "#b", "c"]) == ("a##bc", False)


def test_held_text_is_released_at_the_end():
    assert run(("END",), ["x", "EN"]) == ("xEN", False)


def test_no_stops_releases_everything_at_once():
    stop_filter = StopStringFilter(())
    released, stopped = stop_filter.push(events("hi")[0])
    assert [e.text for e in released] == ["hi"] and not stopped
