"""/whisk.system/samples/greeting: a friendly greeting."""

import json


def main(args):
    print("params: " + json.dumps(args, separators=(",", ":")))
    name = args.get("name") or "stranger"
    place = args.get("place") or "somewhere"
    return {"payload": f"Hello, {name} from {place}!"}
