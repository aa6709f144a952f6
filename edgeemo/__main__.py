import sys

from edgeemo.cli import main

sys.exit(main())
