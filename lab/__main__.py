"""`lab` and `python -m lab`. A Ctrl-C while Python is still loading or
parsing the command line (typer, rich: the first tenth of a second) is an
interrupt like any other: one line and exit 130, not a traceback. SIGTERM and
SIGHUP stop lab as Ctrl-C does (lab/core/interrupts.py). Inside a command,
lab/cli/boundary.py's error boundary says what was removed or kept."""

import sys


def main() -> None:
    try:
        import warnings

        # A certificate's CN holds 64 characters (X.520's ub-common-name; OpenSSL counts characters), so a long
        # name in Cyrillic or Chinese has more than 64 UTF-8 bytes: cryptography counts bytes and warns each time
        # it reads one (`lab client list`, `lab room`, a handout…). A UserWarning is not for the projector. Set
        # inside the try: compiling its pattern imports `re`, and a Ctrl-C there is one line, not a traceback.
        warnings.filterwarnings("ignore", message="Attribute's length must be", category=UserWarning)
        from lab.core.interrupts import stop_like_ctrl_c

        stop_like_ctrl_c()
        from lab.cli import main as run

        run()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted before the command began: nothing was done\n")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
