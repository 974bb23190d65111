"""Quote-mark pairing on plain text (no NLP)."""

from pipeline.quotes import find_quotes


def texts(s: str) -> list[str]:
    return [q.text(s) for q in find_quotes(s)]


def test_straight_and_curly_quotes():
    s = 'He said "we are ready" and she said “so are we”.'
    assert texts(s) == ["we are ready", "so are we"]


def test_quote_over_paragraphs_is_one_span():
    s = '"First paragraph of the quote.\n"Second paragraph," he said.\nNext.'
    [q] = find_quotes(s)
    assert len(q.parts) == 2
    assert q.text(s) == "First paragraph of the quote.\nSecond paragraph,"


def test_unbalanced_mark_stops_at_paragraph_end():
    s = 'A "stray mark here\nAnd a normal paragraph with no quote.'
    [q] = find_quotes(s)
    assert not q.closed and q.text(s) == "stray mark here"


def test_nested_single_quotes_stay_inside():
    s = "“He told me ‘never again’ and left,” she said."
    assert texts(s) == ["He told me ‘never again’ and left,"]


def test_headline_single_quotes_and_apostrophes():
    s = "Spokesman says relations 'are and will be bad' and it's Russia's view."
    assert texts(s) == ["are and will be bad"]


def test_no_quotes_only_marks():
    assert find_quotes('"" “” " "') == []
    assert find_quotes("No quotes at all.") == []
