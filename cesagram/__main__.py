import sys

from cesagram.cli import main

sys.exit(main())
