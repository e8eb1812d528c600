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


def _baseline(samples):
    """Side by side: detect-secrets alone (no known-format pass), as the gate was before issue 13."""
    import stockade.security.scanner.secrets as secrets_module
    from stockade.security.scanner.tokens import TokenRules, load_token_rules

    real = load_token_rules()
    secrets_module.load_token_rules = lambda: TokenRules(
        (), real.b64_min, real.b64_max, 0, real.marker, real.min_reason
    )
    try:
        return evaluate(Scanner(), samples)
    finally:
        secrets_module.load_token_rules = load_token_rules


def main() -> None:
    logging.disable(logging.WARNING)
    samples = build_corpus()
    base_scores, _base_misses, _base_fps = _baseline(samples)
    scores, misses, false_positives = evaluate(Scanner(), samples)
    positives = sum(s.positives for s in scores.values())
    negatives = sum(1 for s in samples if s.format is None)
    print(f"corpus: {positives} positives over {len(scores)} buckets, {negatives} negatives")
    print(f"{'family':12} {'format':28} {'n':>4} {'recall':>7} {'precision':>9} {'fp':>3} {'baseline recall':>16}")
    family_of = {fmt: fam for fam, fmts in FAMILIES.items() for fmt in fmts}
    for fmt in sorted(scores, key=lambda f: (family_of.get(f, "~"), f)):
        s = scores[fmt]
        base = base_scores.get(fmt)
        base_recall = f"{base.recall:.1%}" if base is not None and base.positives else "-"
        print(
            f"{family_of.get(fmt, '-'):12} {fmt:28} {s.positives:>4} {s.recall:>7.1%} {s.precision:>9.1%} "
            f"{s.false_positives:>3} {base_recall:>16}"
        )
    detected = sum(s.detected for s in scores.values())
    fps = sum(s.false_positives for s in scores.values())
    print(f"overall: recall {detected / positives:.1%}, precision {detected / (detected + fps):.1%}")
    base_detected = sum(s.detected for s in base_scores.values())
    base_fp = sum(s.false_positives for s in base_scores.values())
    print(
        f"baseline (detect-secrets alone): recall {base_detected / positives:.1%}, "
        f"precision {base_detected / max(1, base_detected + base_fp):.1%}; "
        f"recall ratio {detected / max(1, base_detected):.2f}x"
    )
    worst = min((s.recall for s in scores.values() if s.positives), default=1.0)
    print(f"target recall >= 95% per format: {'met' if worst >= 0.95 else 'NOT met'} (lowest {worst:.1%})")
    if misses:
        print("missed:", ", ".join(misses))
    if false_positives:
        print("false positives:", ", ".join(false_positives))


if __name__ == "__main__":
    main()
