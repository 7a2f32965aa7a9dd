from gennape.cli import main

raise SystemExit(main())
