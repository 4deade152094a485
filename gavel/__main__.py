from gavel.cli import main

raise SystemExit(main())
