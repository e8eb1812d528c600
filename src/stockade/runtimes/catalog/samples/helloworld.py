"""/whisk.system/samples/helloworld: logs a greeting (see the activation's logs)."""


def main(args):
    print(f"hello {args.get('payload')}!")
    return {}
