"""/whisk.system/utils/smash: every property nested under the one ``$fieldName`` names."""


def main(args):
    parent = args.get("$fieldName")
    if not isinstance(parent, str):
        return {"error": "Expected an argument '$fieldName' of type 'string'."}
    rest = {k: v for k, v in args.items() if k != "$fieldName"}
    return {parent: rest}
