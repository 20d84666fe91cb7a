"""``python -m jepakit.cli``: how torchrun starts ``jepakit run`` on every process."""

import sys

from jepakit.cli import main

sys.exit(main())
