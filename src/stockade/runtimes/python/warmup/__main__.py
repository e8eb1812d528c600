# A stem cell's warm-up action: the runner loads and runs it once, then forgets it, so that the
# code paths of init and run are already touched (copy-on-write faults, caches) when the stem
# cell's real action arrives. Never visible to an action.
def main(args):
    return {"warm": True, "args": args}
