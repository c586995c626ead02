"""``python -m cs_problems``: run the compressed-sensing experiment (see experiment.main)."""

from .experiment import main

raise SystemExit(main())
