"""Hard-coded secret detection: precision and recall per format on the labelled corpus.

The corpus (tests/security/scanner/secret_corpus.py) places every known token format where real
code puts it (assignments, call and keyword arguments, wrapped literals, dictionaries, headers,
env files, JavaScript, base64, joined pieces) beside realistic false positives (hashes, ids,
placeholders, documentation examples, suppressed fixtures). Each sample is scanned as an action
by the deploy gate's Scanner. Recall counts positives with a blocking secret finding; precision
counts blocking secret findings on negatives against the format that fired. Target (issue 13):
recall >= 95% on every known format. No timing is reported as a result here: this measures
detection quality, not speed.
"""

from __future__ import annotations

import logging
import sys

from common import REPO

sys.path.insert(0, str(REPO / "tests"))

from security.scanner.secret_corpus import FAMILIES, build_corpus, evaluate
from stockade.security.scanner import Scanner


def main() -> None:
    logging.disable(logging.WARNING)
    samples = build_corpus()
    scores, misses, false_positives = evaluate(Scanner(), samples)
    positives = sum(s.positives for s in scores.values())
    negatives = sum(1 for s in samples if s.format is None)
    print(f"corpus: {positives} positives over {len(scores)} buckets, {negatives} negatives")
    print(f"{'family':12} {'format':28} {'n':>4} {'recall':>7} {'precision':>9} {'fp':>3}")
    family_of = {fmt: fam for fam, fmts in FAMILIES.items() for fmt in fmts}
    for fmt in sorted(scores, key=lambda f: (family_of.get(f, "~"), f)):
        s = scores[fmt]
        print(
            f"{family_of.get(fmt, '-'):12} {fmt:28} {s.positives:>4} {s.recall:>7.1%} {s.precision:>9.1%} "
            f"{s.false_positives:>3}"
        )
    detected = sum(s.detected for s in scores.values())
    fps = sum(s.false_positives for s in scores.values())
    print(f"overall: recall {detected / positives:.1%}, precision {detected / (detected + fps):.1%}")
    worst = min((s.recall for s in scores.values() if s.positives), default=1.0)
    print(f"target recall >= 95% per format: {'met' if worst >= 0.95 else 'NOT met'} (lowest {worst:.1%})")
    if misses:
        print("missed:", ", ".join(misses))
    if false_positives:
        print("false positives:", ", ".join(false_positives))


if __name__ == "__main__":
    main()
