import sys

from training.ner.train import main

sys.exit(main())
