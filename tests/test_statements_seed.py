"""Statement extraction on the seed text, as a pure function (no database)."""

from pipeline.analyse import analyse_doc


def test_seed_statements(nlp, seed_text):
    analysis = analyse_doc(nlp(seed_text))
    found = {s.quote[:40]: s for s in analysis.statements}
    by_fragment = {
        frag: [s for s in analysis.statements if frag in s.quote]
        for frag in (
            "These elections cannot change anything essential",
            "We are so used to it",
            "There are no concrete plans yet",
            "We cannot say there is a dialogue",
            "will visit these territories",
            "support for the US course in the world is decreasing",
        )
    }
    for frag, matches in by_fragment.items():
        assert len(matches) == 1, (frag, list(found))
    speaker = {frag: m[0].speaker for frag, m in by_fragment.items()}
    assert speaker.pop("support for the US course in the world is decreasing") == "Dmitry Medvedev"
    assert set(speaker.values()) == {"Dmitry Peskov"}
    plans = by_fragment["There are no concrete plans yet"][0]
    assert (plans.kind, plans.speaker_mention, plans.cue) == ("direct", "he", "said")
    assert by_fragment["will visit these territories"][0].kind == "indirect"
    medvedev = by_fragment["support for the US course in the world is decreasing"][0]
    assert medvedev.kind == "mixed" and medvedev.cue == "said on Telegram"
    assert all(s.speaker != "Vladimir Putin" for s in analysis.statements)
    for s in analysis.statements:
        assert seed_text[s.cue_start : s.cue_end] == s.cue
        if s.speaker_start is not None:
            assert seed_text[s.speaker_start : s.speaker_end] == s.speaker_mention


def test_seed_entities(nlp, seed_text):
    analysis = analyse_doc(nlp(seed_text))
    people = {c.name for c in analysis.clusters.values() if c.label == "PERSON"}
    assert {"Dmitry Peskov", "Vladimir Putin", "Dmitry Medvedev"} <= people
    peskov = [m for m in analysis.mentions if m.text == "Peskov"]
    assert peskov and all(analysis.clusters[m.cluster].name == "Dmitry Peskov" for m in peskov)
    for m in analysis.mentions:
        assert seed_text[m.start : m.end] == m.text
