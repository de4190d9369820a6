from ssechat.cli import main

raise SystemExit(main())
