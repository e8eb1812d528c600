"""/whisk.system/samples/cat: the lines and their concatenation, one per line."""


def main(args):
    lines = args.get("lines") or []
    return {"lines": lines, "payload": "".join(f"{line}\n" for line in lines)}
