import sys

from trackio_integrations.cli.commands import main

sys.exit(main())
