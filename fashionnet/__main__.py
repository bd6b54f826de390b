import sys

from fashionnet.cli import main

sys.exit(main())
