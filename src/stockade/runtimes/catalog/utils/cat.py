"""/whisk.system/utils/cat: the lines and their concatenation (other fields are dropped)."""

import json


def main(args):
    lines = args.get("lines") or []
    result = {"lines": lines, "payload": "\n".join(_text(line) for line in lines)}
    print("cat: returning " + json.dumps(result, separators=(",", ":")))
    return result


def _text(value):
    """How JavaScript's Array.join shows a value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
