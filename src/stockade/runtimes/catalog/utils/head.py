"""/whisk.system/utils/head: the first ``num`` lines (default 1)."""


def main(args):
    lines = args.get("lines") or []
    num = args.get("num") or 1
    head = lines[: int(num)] if isinstance(num, (int, float)) and not isinstance(num, bool) else lines[:1]
    print(f"head get first {num} lines")
    return {"lines": head, "num": num}
