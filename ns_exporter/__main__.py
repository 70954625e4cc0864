"""`python -m ns_exporter`."""

import sys

from ns_exporter.cli import main

sys.exit(main())
