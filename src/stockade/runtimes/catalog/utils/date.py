"""/whisk.system/utils/date: the current date and time (ISO 8601, UTC, milliseconds)."""

from datetime import UTC, datetime


def main(args):
    now = datetime.now(UTC)
    print("It is now " + now.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)"))
    return {"date": now.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
