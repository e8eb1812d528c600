"""The labelled secret corpus: recall on every known format and no blocking false positive.

The same corpus and scoring feed ``benchmarks/bench_secrets.py``, which prints precision and
recall per format.
"""

from security.scanner.secret_corpus import GENERATORS, build_corpus, evaluate
from stockade.security.scanner import Scanner


def test_recall_on_known_formats_and_precision_on_realistic_false_positives():
    samples = build_corpus()
    scores, misses, false_positives = evaluate(Scanner(), samples)
    assert set(GENERATORS) | {"private-key"} <= set(scores)
    for fmt, score in scores.items():
        if score.positives:
            assert score.recall >= 0.95, (fmt, misses)
    assert false_positives == []
    negatives = [s for s in samples if s.format is None]
    assert len(negatives) >= 50
