"""`python -m regdemo`: the command line."""

import sys

from regdemo.cli import main

sys.exit(main())
