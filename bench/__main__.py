import sys

# `python -m bench --only models`: the many-models cells (bench/models.py), on their own.
if sys.argv[1:3] == ["--only", "models"]:
    from bench.models import main as models_main

    raise SystemExit(models_main(sys.argv[3:]))

from bench.run import main

raise SystemExit(main())
