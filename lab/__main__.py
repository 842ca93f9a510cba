"""`lab` and `python -m lab`. A Ctrl-C while Python is still loading or
parsing the command line (typer, rich: the first tenth of a second) is an
interrupt like any other: one line and exit 130, not a traceback. SIGTERM and
SIGHUP stop lab as Ctrl-C does (lab/core/interrupts.py). Inside a command,
lab/cli/boundary.py's error boundary says what was removed or kept."""

import sys


def main() -> None:
    try:
        from lab.core.interrupts import stop_like_ctrl_c

        stop_like_ctrl_c()
        from lab.cli import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted before the command began: nothing was done\n")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
