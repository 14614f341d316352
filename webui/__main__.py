"""`python -m webui`: serve the workbench UI (see webui.app.main for the options)."""

from webui.app import main

main()
