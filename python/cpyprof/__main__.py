"""`python -m cpyprof record|report|flame|convert ...` (see cpyprof._cli)."""
import sys

from cpyprof._cli import main

if __name__ == "__main__":
    sys.exit(main())
