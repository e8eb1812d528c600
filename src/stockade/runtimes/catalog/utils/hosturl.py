"""/whisk.system/utils/hosturl: the URL that activates an action or trigger of the caller's namespace."""

import os

_EXTENSIONS = (".json", ".text", ".html", ".http")


def main(args):
    host = os.environ.get("__OW_API_HOST", "")
    namespace = os.environ.get("__OW_NAMESPACE", "")
    web = args.get("web") is True
    trigger = bool(args.get("trigger"))
    path = args.get("path")
    collection = "triggers" if args.get("trigger") is True else "actions"
    base = f"{host}/api/v1/web/{namespace}" if web else f"{host}/api/v1/namespaces/{namespace}/{collection}"
    if web and trigger:
        return {"error": "triggers are not allowed for web actions."}
    if web and args.get("ext") and args.get("ext") not in _EXTENSIONS:
        return {"error": 'extension for web action must be one of [".json", ".text", ".html", ".http"].'}
    if not web and trigger and isinstance(path, str) and "/" in path:
        return {"error": "triggers are not allowed in packages."}
    if path:
        name = f"default/{path}" if web and "/" not in path else path
        extension = (args.get("ext") or ".json") if web else ""
        return {"url": f"{base}/{name}{extension}"}
    return {"url": base}
