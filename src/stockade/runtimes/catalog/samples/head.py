"""/whisk.system/samples/head: the first ``num`` lines (default 1)."""


def main(args):
    lines = args.get("lines") or []
    num = args.get("num") or 1
    return {"lines": lines[: int(num)], "num": num}
