"""/whisk.system/utils/namespace: the namespace of the key that invoked the action."""

import os


def main(args):
    return {"namespace": os.environ.get("__OW_NAMESPACE", "")}
