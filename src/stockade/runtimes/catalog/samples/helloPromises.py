"""/whisk.system/samples/helloPromises: the greeting as an array of words."""


def main(args):
    name = args.get("name") or args.get("payload") or "stranger"
    place = args.get("place") or "somewhere"
    return {"lines": f"Hello, {name} from {place}!".split(" ")}
