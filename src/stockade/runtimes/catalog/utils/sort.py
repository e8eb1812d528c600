"""/whisk.system/utils/sort: the lines sorted as JavaScript's default sort does (by their text)."""

import json


def main(args):
    lines = args.get("lines") or []
    print("sort input msg: " + json.dumps(args, separators=(",", ":")))
    ordered = sorted(lines, key=_text)
    return {"lines": ordered, "length": len(ordered)}


def _text(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
