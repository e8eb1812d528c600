"""/whisk.system/samples/wordcount: how many words ``payload`` has."""


def main(args):
    text = str(args.get("payload") or "")
    count = len(text.split(" "))
    print(f"The message '{text}' has {count} words")
    return {"count": count}
