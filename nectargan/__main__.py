"""``python -m nectargan`` (and ``torchrun -m nectargan``) run the command line."""

import sys

from nectargan.cli.main import main

sys.exit(main())
