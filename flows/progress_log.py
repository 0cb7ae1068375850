"""Progress of long work in a flow's log, for the runs whose output nobody watches live."""

from __future__ import annotations


def every_tenth(logger, stage: str, unit: str):
    """A progress callback (done, total) that logs every tenth of the way: a data stage or an encoding over a full
    dataset takes minutes."""
    shown = [-1]

    def report(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth > shown[0]:
            shown[0] = tenth
            logger.info("stage %s: %d / %d %s", stage, done, total, unit)

    return report
