"""/whisk.system/samples/printParams: logs the parameters sorted by key and returns them."""


def main(args):
    ordered = dict(sorted(args.items()))
    for key, value in ordered.items():
        print(f"params.{key}: {value}")
    return {"params": ordered}
