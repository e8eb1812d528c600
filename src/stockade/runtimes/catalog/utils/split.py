"""/whisk.system/utils/split: ``payload`` split on ``separator`` (default: line breaks)."""

import re


def main(args):
    payload = args.get("payload")
    text = "" if payload is None else str(payload)
    separator = args.get("separator")
    lines = text.split(separator) if isinstance(separator, str) and separator else re.split(r"\r?\n", text)
    return {"lines": lines, "payload": payload}
