import sys

from shallowcert.cli import main

sys.exit(main())
