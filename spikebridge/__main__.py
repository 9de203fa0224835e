import sys

from spikebridge.cli import main

sys.exit(main())
