import sys

from devops_operator.runner.main import main

sys.exit(main())
