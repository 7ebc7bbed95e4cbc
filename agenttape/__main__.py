from agenttape.cli import main

raise SystemExit(main())
